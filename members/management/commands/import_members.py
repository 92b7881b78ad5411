from members.management.commands._import_base import ImportCommand


class Command(ImportCommand):
    help = "Import members from CSV; nothing is written unless every row is valid."
    kind = "members"

    def handle(self, *args, path, errors, **options):
        self.run(path, errors)

from members.management.commands._import_base import ImportCommand


class Command(ImportCommand):
    help = (
        "Import historical purchases from CSV (for analytics; they earn no points unless "
        "--earn-points). Nothing is written unless every row is valid."
    )
    kind = "purchases"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--earn-points", action="store_true")

    def handle(self, *args, path, errors, earn_points, **options):
        self.run(path, errors, earn_points=earn_points)

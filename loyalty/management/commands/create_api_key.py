from django.core.management.base import BaseCommand, CommandError

from loyalty.engine.apikeys import create_api_key
from loyalty.models import Store


class Command(BaseCommand):
    help = "Create an API key for a store or partner; the key is printed as the last line."

    def add_arguments(self, parser):
        parser.add_argument("store_code")
        parser.add_argument("--name", default="command line")

    def handle(self, *args, store_code, name, **options):
        store = Store.objects.filter(code=store_code).first()
        if store is None:
            raise CommandError(f"no store with code {store_code!r}")
        key, raw = create_api_key(store=store, name=name)
        self.stderr.write(f"API key {key.prefix} for {store.code} created; it is shown only once.")
        self.stdout.write(raw)

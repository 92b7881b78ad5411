import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.calibration import fit_history


class Command(BaseCommand):
    help = (
        "Fit BG/NBD and Gamma-Gamma on the identified buyers' purchases up to DATE (weeks; a "
        "day's purchases count once) and print the parameters as one JSON object."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--until", required=True, help="last day of the calibration, YYYY-MM-DD"
        )
        parser.add_argument(
            "--json", action="store_true", help="accepted for scripts; the output is always JSON"
        )

    def handle(self, *args, until, **options):
        try:
            day = date.fromisoformat(until)
        except ValueError:
            raise CommandError(f"--until must be a date as YYYY-MM-DD, not {until!r}") from None
        self.stdout.write(json.dumps(fit_history(day), indent=2))

from django.core.management.base import BaseCommand

from loyalty.engine.ledger import ledger_drift


class Command(BaseCommand):
    help = (
        "Verify for every member that the cached balance equals the sum of ledger entries and "
        "the remaining lot points minus debt. Exits 1 naming the members that drift."
    )

    def handle(self, *args, **options):
        drifting = list(ledger_drift())
        if not drifting:
            self.stdout.write(self.style.SUCCESS("ledger consistent: no member drifts"))
            return
        for card, balance, ledger_sum, lots_sum, debt in drifting:
            self.stderr.write(
                f"member {card}: cached balance {balance}, ledger sum {ledger_sum}, "
                f"lots {lots_sum} minus debt {debt}"
            )
        self.stderr.write(f"{len(drifting)} member(s) drift")
        raise SystemExit(1)

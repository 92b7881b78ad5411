"""Make realistic members, purchases and ledger at scale (see loyalty/project/datagen/)."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from loyalty.project.datagen import Plan, generate


class Command(BaseCommand):
    help = (
        "Generate N members and M purchases with a consistent ledger (COPY on PostgreSQL, "
        "bulk inserts on SQLite). Deterministic for a given --seed and --now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, required=True)
        parser.add_argument("--purchases", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--days", type=int, default=730, help="window of purchases")
        parser.add_argument("--anonymous-share", type=float, default=0.2)
        parser.add_argument("--now", help="ISO time the data ends at (default: now)")
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        if options["members"] < 0 or options["purchases"] < 0:
            raise CommandError("--members and --purchases must not be negative")
        if options["members"] == 0 and options["purchases"] > 0:
            options["anonymous_share"] = 1.0
        if not 0 <= options["anonymous_share"] <= 1:
            raise CommandError("--anonymous-share must be between 0 and 1")
        now = datetime.now(UTC)
        if options["now"]:
            now = parse_datetime(options["now"])
            if now is None or now.tzinfo is None:
                raise CommandError("--now must be an ISO 8601 time with a zone")
        plan = Plan(
            members=options["members"],
            purchases=options["purchases"],
            seed=options["seed"],
            days=options["days"],
            anonymous_share=options["anonymous_share"],
            now=now,
        )
        stats, timings = generate(
            plan, using=options["database"], progress=lambda text: self.stdout.write(text)
        )
        for name, value in stats.items():
            self.stdout.write(f"{name:>16}: {value:,}")
        for name, seconds in timings.items():
            self.stdout.write(f"{name + ' s':>16}: {seconds:.1f}")
        rate = plan.purchases / timings["total"] if timings["total"] else 0
        self.stdout.write(self.style.SUCCESS(f"done: {rate:,.0f} purchases per second overall"))

"""The what-if replay (issue 19, item 6) in process: the seconds one comparison takes, and its
figures, on the database of DATABASE_URL (the issue's floor: under 10 s at 1M members / 10M
purchases on PostgreSQL).

    DATABASE_URL=... .venv/bin/python -m bench.whatif --rounds 3 [--explain] [--live]

It rebuilds the nightly inputs first (``refresh_inputs``, the ``refresh_analytics`` job's step:
timed too), then replays from them as the page does; ``--live`` replays from the purchases
themselves instead (the page before the job's first run).

The proposal changes every rule the page offers: earn rates one percentage point up, the upper
thresholds a fifth lower, points last half as long, pay at most 30% of a purchase.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.project.settings")


def proposal(today):
    from analytics.whatif import Rules, Step

    steps = tuple(
        Step(
            s.tier_id,
            (s.threshold * Decimal("0.8")).to_integral_value(),
            s.earn_rate + Decimal("0.01"),
        )
        for s in today.steps
    )
    return Rules(steps=steps, expiry_days=max(1, today.expiry_days // 2), cap=Decimal("0.3"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE once")
    parser.add_argument("--live", action="store_true", help="replay from the purchases")
    args = parser.parse_args(argv)
    django.setup()
    from django.db import connection
    from django.utils import timezone

    from analytics import whatif
    from loyalty.models import Purchase

    today = whatif.Rules.today()
    rules = proposal(today)
    now = timezone.now()
    purchases = Purchase.objects.filter(occurred_at__gte=now - timedelta(days=365)).count()
    print(f"{connection.settings_dict['ENGINE']}; purchases in the last 365 days: {purchases:,}")
    if not args.live:
        started = time.perf_counter()
        rows = whatif.refresh_inputs(now)
        print(f"nightly inputs: {rows:,} purchases in {time.perf_counter() - started:.2f} s")
    times = []
    for round_ in range(args.rounds):
        started = time.perf_counter()
        result = whatif.replay(rules, as_of=now if args.live else None)
        times.append(time.perf_counter() - started)
        print(f"round {round_ + 1}: {times[-1]:.2f} s")
    print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s (target < 10 s)")
    for name in ("today", "proposal"):
        side = getattr(result, name)
        print(
            f"{name:>9}: issued {side.issued:,} spent {side.redeemed:,} expired {side.expired:,}"
            f" left {side.liability:,} breakage {side.breakage_rate} shortfall {side.shortfall:,}"
            f" tiers {side.tiers}"
        )
    print(f" recorded: issued {result.recorded_issued:,} spent {result.recorded_redeemed:,}")
    if args.explain:
        whatif.explain(rules, as_of=now if args.live else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

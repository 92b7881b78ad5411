"""The segment form's live count in process (issue 18): a day of receipts since the snapshot,
the plans, and p50/p95 per segment definition.

    DATABASE_URL=... .venv/bin/python -m bench.segments receipts 14000
    DATABASE_URL=... .venv/bin/python -m bench.segments explain
    DATABASE_URL=... .venv/bin/python -m bench.segments time --rounds 15

``receipts N`` records N purchases through the engine (``record_purchase``, as the API does),
dated between the nightly snapshot's end and now, copied from a seeded sample of last month's
receipts (member, store, amount), so the day looks like the data. ``time`` GETs the count
fragment of every definition of ``bench.run.segment_queries`` in turn, signed in as a
superuser, through Django's test client (the view, the form, the query, the template); the
definitions' order turns each round. ``explain`` prints EXPLAIN (ANALYZE, BUFFERS) of each count.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.project.settings")


def samples():
    from loyalty.models import Store, Tier

    return {
        "stores": list(Store.objects.order_by("id").values_list("id", flat=True)),
        "tiers": list(Tier.objects.order_by("threshold").values_list("id", flat=True)),
    }


def definition_of(query):
    """The definition the form makes of a query string, as the count fragment does."""
    from django.http import QueryDict

    from campaigns.forms import SegmentForm

    form = SegmentForm(QueryDict(query), count_only=True)
    if not form.is_valid():
        raise SystemExit(f"invalid segment {query}: {form.errors}")
    return form.definition()


def add_receipts(count, seed):
    from django.db import connection
    from django.utils import timezone

    from loyalty.engine.purchases import record_purchase
    from loyalty.models import Store
    from members.segments import purchase_snapshot, snapshot_end

    snapshot = purchase_snapshot()
    if snapshot is None:
        raise SystemExit("no snapshot: run manage.py runjob refresh_analytics first")
    start, now = snapshot_end(snapshot), timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed / 1000])
        cursor.execute(
            """
            SELECT m.card_number, p.store_id, p.amount FROM (
                SELECT member_id, store_id, amount FROM loyalty_purchase
                WHERE occurred_at >= %s AND occurred_at < %s AND member_id IS NOT NULL
                ORDER BY random() LIMIT %s
            ) p JOIN members_member m ON m.id = p.member_id
            WHERE m.status = 'active' AND m.merged_into_id IS NULL
            """,
            [start - timedelta(days=30), start, count],
        )
        rows = cursor.fetchall()
    stores = {store.pk: store for store in Store.objects.all()}
    rng = random.Random(seed)
    span = (now - start).total_seconds()
    started = time.monotonic()
    for number, (card, store_id, amount) in enumerate(rows):
        when = start + timedelta(seconds=rng.uniform(0, span))
        record_purchase(
            store=stores[store_id],
            external_id=f"seg-day-{seed}-{number}",
            amount=Decimal(amount),
            occurred_at=when,
            card_number=card,
            now=max(when, start),
        )
        if number and number % 2000 == 0:
            print(f"  {number:,} receipts, {time.monotonic() - started:.0f} s", flush=True)
    print(f"{len(rows):,} receipts since {start.isoformat()} in {time.monotonic() - started:.0f} s")


def explain(queries):
    """EXPLAIN (ANALYZE, BUFFERS) of the very statement ``segment_count`` runs."""
    from django.db import connection

    from members.segments import purchase_snapshot, segment_count

    snapshot = purchase_snapshot()
    for query in queries:
        statements = []

        def capture(execute, sql, params, many, context, statements=statements):
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            segment_count(definition_of(query), snapshot=snapshot)
        sql, params = statements[-1]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"=== {query}\n{plan}\n", flush=True)


def timings(queries, rounds):
    from django.test import Client

    from loyalty.models import User

    user, _ = User.objects.get_or_create(
        username="bench-segments", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost", HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(user)
    times = {query: [] for query in queries}
    for query in queries:  # warm: one of each, not counted
        response = client.get(f"/campaigns/segments/new/?{query}", secure=True)
        assert response.status_code == 200, (query, response.status_code)
    for number in range(rounds):
        order = queries[number % len(queries) :] + queries[: number % len(queries)]
        for query in order:
            started = time.perf_counter()
            response = client.get(f"/campaigns/segments/new/?{query}", secure=True)
            times[query].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (query, response.status_code)
    every = [ms for values in times.values() for ms in values]
    print(f"{'segment':<62} {'p50':>7} {'p95':>7}  (ms, {rounds} rounds)")
    for query, values in times.items():
        print(f"{query:<62} {statistics.median(values):>7.0f} {percentile(values, 95):>7.0f}")
    print(f"{'all':<62} {statistics.median(every):>7.0f} {percentile(every, 95):>7.0f}")
    print(f"load: {os.getloadavg()}")


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("receipts")
    add.add_argument("count", type=int)
    add.add_argument("--seed", type=int, default=1)
    sub.add_parser("explain").add_argument("--only", nargs="*")
    timed = sub.add_parser("time")
    timed.add_argument("--rounds", type=int, default=10)
    timed.add_argument("--only", nargs="*")
    args = parser.parse_args(argv)
    django.setup()
    from bench.run import segment_queries

    queries = segment_queries(samples())
    if getattr(args, "only", None):
        queries = [q for q in queries if any(word in q for word in args.only)]
    if args.command == "receipts":
        add_receipts(args.count, args.seed)
    elif args.command == "explain":
        explain(queries)
    else:
        timings(queries, args.rounds)


if __name__ == "__main__":
    sys.exit(main())

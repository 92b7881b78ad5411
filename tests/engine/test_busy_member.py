"""The busiest member costs what anyone costs (issue 18): a purchase reads a fixed number of a
member's lots, however many are open. Measured with the planner's own row counts (EXPLAIN
ANALYZE), not with a clock."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.engine import ledger
from loyalty.models import PointsLot
from members.models import Member

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL plans; SQLite is the demo database"
)
OPEN_LOTS = 3000


@pytest.fixture
def busy(pos):
    """A member with OPEN_LOTS lots of 1 point, half of them sharing one expiry date."""
    member = Member.objects.get(card_number=pos.enrol()["card_number"])
    now = timezone.now()
    PointsLot.objects.bulk_create(
        PointsLot(
            member=member,
            points=1,
            remaining=1,
            available_from=now - timedelta(days=1),
            expires_at=now + timedelta(days=30 if n % 2 else 1 + n % 300),
        )
        for n in range(OPEN_LOTS)
    )
    Member.objects.filter(pk=member.pk).update(points_balance=OPEN_LOTS)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_pointslot")  # the plan a stale-statistics database makes
    member.refresh_from_db()
    return member, now


def rows_read(sql, params):
    """The most rows any scan of the plan read (returned or filtered out)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node):
        scanned = "Scan" in node["Node Type"]
        own = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) if scanned else 0
        return max([own, *(walk(child) for child in node.get("Plans", []))])

    return walk(plan[0]["Plan"])


def test_a_spend_reads_only_the_lots_it_takes_from(busy):
    member, now = busy
    params = {"member": member.pk, "now": now, "points": 5}
    assert rows_read(ledger.PG_SPEND, params) <= 5


def test_a_spend_takes_soonest_expiry_first_then_lowest_id(busy):
    member, now = busy
    soonest = list(
        PointsLot.objects.filter(member=member)
        .order_by("expires_at", "id")
        .values_list("id", flat=True)
    )
    taken = ledger.spend_lots(member, now, 40)
    assert taken == [(lot, 1) for lot in soonest[:40]]
    assert PointsLot.objects.filter(member=member, remaining=0).count() == 40


def test_the_balance_of_a_member_with_many_lots_reads_few_of_them(busy):
    member, now = busy
    sql, params = ledger.capped_lot_sums_sql(member.pk, now)
    assert rows_read(sql, params) <= ledger.OPEN_LOTS_READ
    # No lot has expired: the look-up of expired lots (balance_from_cache) finds none, reading none.
    assert ledger.balance_from_cache(member, now) == ledger.Balance(OPEN_LOTS, 0)
    assert (
        rows_read(
            "SELECT COALESCE(SUM(remaining), 0) FROM loyalty_pointslot"
            " WHERE member_id = %s AND remaining > 0 AND expires_at <= %s",
            [member.pk, now],
        )
        == 0
    )


def test_a_purchase_by_the_busiest_member_keeps_the_ledger_exact(busy, pos):
    member, _now = busy
    answer = pos.buy(member.card_number, "1000.00", redeem_points=100)
    member.refresh_from_db()
    available = OPEN_LOTS - 100 + answer["earned_points"]
    assert answer["balance"] == {"available": available, "pending": 0}
    assert member.points_balance == available
    assert ledger.balance_of(member, timezone.now()).available == available

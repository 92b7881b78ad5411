"""The purchase hot path: a fixed, small number of statements per request."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.engine.apikeys import shared_redis
from loyalty.models import EntryKind, LedgerEntry, PointsLot, Purchase
from members.models import Member


def test_an_earning_purchase_costs_a_fixed_number_of_statements(pos, api):
    card = pos.enrol()["card_number"]
    pos.buy(card, "100.00")  # warms the per-process rules cache
    with CaptureQueriesContext(connection) as first:
        pos.buy(card, "100.00")
    with CaptureQueriesContext(connection) as second:
        pos.buy(card, "100.00", redeem_points=5)
    statements = [
        q["sql"].split()[0]
        for q in first.captured_queries
        if q["sql"].split()[0] not in ("SAVEPOINT", "RELEASE")  # the test's own transaction
    ]
    # The member locked, its balance, spend for the tier, purchase with its answer, lot and
    # entry (on PostgreSQL in one statement), member's sums. Without Redis the key is read too
    # (nothing tells this process when another revokes it); with Redis it comes from memory.
    lot_and_entry = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    expected = ["SELECT", "SELECT", "INSERT", *lot_and_entry, "UPDATE"]
    if shared_redis() is None:
        expected = ["SELECT", *expected]
    assert statements == expected
    # Spending 5 of the 3 + 3 points earned so far, from two lots: on PostgreSQL one statement
    # takes from both (elsewhere: read the lots, then take from each), then where they came
    # from is recorded, and the redeem entry.
    spend = 1 if connection.vendor == "postgresql" else 3
    assert len(second.captured_queries) - len(first.captured_queries) == spend + 2


def test_an_earning_purchase_writes_its_lot_and_entry_whole(pos):
    # On PostgreSQL both go in one hand-built statement (points.insert_lot_and_entry): every
    # column the ledger reads must arrive, the defaults and the lot's id in the entry included.
    card = pos.enrol()["card_number"]
    member = Member.objects.get(card_number=card)
    # 12 points owed (as after a refund of points already spent), repaid from the new lot first
    Member.objects.filter(pk=member.pk).update(points_debt=12, points_balance=-12)
    answer = pos.buy(card, "1000.00")
    purchase = Purchase.objects.get(external_id=answer["external_id"])
    lot = PointsLot.objects.get(member=member)
    entry = LedgerEntry.objects.get(member=member)
    assert (lot.points, lot.remaining, lot.purchase_id, lot.batch) == (30, 18, purchase.pk, "")
    assert lot.created_at is not None
    assert lot.expires_at > lot.available_from
    assert (entry.kind, entry.account, entry.points) == (EntryKind.EARN, "issued", 30)
    assert (entry.lot_id, entry.purchase_id) == (lot.pk, purchase.pk)
    assert entry.expires_at == lot.expires_at
    assert (entry.staff_id, entry.refund_id, entry.reason, entry.batch) == (None, None, "", "")
    member.refresh_from_db()
    assert (member.points_balance, member.points_debt) == (18, 0)
    assert answer["balance"] == {"available": 18, "pending": 0}

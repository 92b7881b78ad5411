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
    # The member locked, its balance and spend for the tier; then the purchase with its
    # answer, its lot and entry and the member's sums (on PostgreSQL in one statement). Without
    # Redis the key is read too (nothing tells this process when another revokes it); with
    # Redis it comes from memory.
    writes = ["WITH"] if connection.vendor == "postgresql" else ["INSERT"] * 3 + ["UPDATE"]
    expected = ["SELECT", "SELECT", *writes]
    if shared_redis() is None:
        expected = ["SELECT", *expected]
    assert statements == expected
    # Spending 5 of the 3 + 3 points earned so far, from two lots: on PostgreSQL the same three
    # statements, the spend and where its points came from inside the one write. Elsewhere the
    # receipt, the redeem entry, the lot and the earn entry, reading the lots and taking from
    # each of the two, where the points came from, the member's sums.
    if connection.vendor == "postgresql":
        assert len(second.captured_queries) == len(first.captured_queries)
    else:
        redeeming = 4 + 3 + 1 + 1
        assert len(second.captured_queries) == len(first.captured_queries) - len(writes) + redeeming


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

"""The purchase hot path: a fixed, small number of statements per request."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.services.apikeys import shared_redis


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
    # The member locked, its balance, spend for the tier, purchase with its answer, lot, entry,
    # member's sums. Without Redis the key is read too (nothing tells this process
    # when another revokes it); with Redis it comes from memory.
    expected = ["SELECT", "SELECT", "INSERT", "INSERT", "INSERT", "UPDATE"]
    if shared_redis() is None:
        expected = ["SELECT", *expected]
    assert statements == expected
    # Spending 5 of the 3 + 3 points earned so far, from two lots: on PostgreSQL one statement
    # takes from both (elsewhere: read the lots, then take from each), then where they came
    # from is recorded, and the redeem entry.
    spend = 1 if connection.vendor == "postgresql" else 3
    assert len(second.captured_queries) - len(first.captured_queries) == spend + 2

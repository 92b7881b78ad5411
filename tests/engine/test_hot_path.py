"""The purchase hot path: a fixed, small number of statements per request."""

from django.db import connection
from django.test.utils import CaptureQueriesContext


def test_an_earning_purchase_costs_a_fixed_number_of_statements(pos, api):
    card = pos.enrol()["card_number"]
    pos.buy(card, "100.00")  # warms the per-process rules cache
    with CaptureQueriesContext(connection) as first:
        pos.buy(card, "100.00")
    with CaptureQueriesContext(connection) as second:
        pos.buy(card, "100.00", redeem_points=5)
    statements = [q["sql"].split()[0] for q in first.captured_queries]
    # key, receipt check, lock, balance, purchase, lot, entry, spend for tier, member, reply
    # (plus SAVEPOINT/RELEASE of the test's own transaction).
    assert len([s for s in statements if s not in ("SAVEPOINT", "RELEASE")]) == 10, statements
    # Spending 5 of the 3 + 3 points earned so far: read the lots, take from each of the two,
    # record where they came from, and the redeem entry.
    assert len(second.captured_queries) - len(first.captured_queries) == 5

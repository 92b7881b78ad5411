"""The database connection dropped in the middle of a request (issue 20, item 1): the API answers
503 ``unavailable`` in its error envelope with Retry-After, nothing of the request is written, and
the same request succeeds once the database answers again.

A real gunicorn serves the purchase. The test holds a lock on the purchase's coupon, so the
request stops inside its transaction after it has inserted the receipt, and then terminates the
request's backend (``pg_terminate_backend``, as a database restart or a failover does).
"""

import threading

import pytest
from django.db import connection

from loyalty.engine.ledger import ledger_drift
from loyalty.models import Coupon, LedgerEntry, Purchase
from members.models import Member
from tests.faults.conftest import RowLock
from tests.faults.http import call

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a dropped connection needs a database server to drop it; SQLite is a file",
)


def test_a_connection_dropped_mid_purchase_is_a_clean_503_and_nothing_is_written(
    gunicorn, api, pos
):
    card = pos.enrol()["card_number"]
    coupon = Coupon.objects.create(code="TEN", kind="percent", value=10)
    key = api._credentials["HTTP_AUTHORIZATION"]
    server = gunicorn()
    body = {"external_id": "R-1", "card_number": card, "amount": "1000.00", "coupon_code": "TEN"}

    answers = []
    with RowLock(Coupon, coupon.pk) as lock:
        request = threading.Thread(
            target=lambda: answers.append(
                call(server.base, "POST", "/api/v1/purchases", body, key=key)
            )
        )
        request.start()
        lock.wait_for_waiter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE %s = ANY(pg_blocking_pids(pid))",
                [lock.pid],
            )
        request.join(timeout=30)

    ((status, answer),) = answers
    assert status == 503, answer
    assert answer == {
        "error": {
            "code": "unavailable",
            "message": "A service the API needs is unreachable. Try again shortly.",
            "fields": {},
        }
    }
    assert Purchase.objects.count() == 0
    assert LedgerEntry.objects.count() == 0
    assert Coupon.objects.get().uses == 0
    assert Member.objects.get(card_number=card).points_balance == 0

    status, receipt = call(server.base, "POST", "/api/v1/purchases", body, key=key)  # the retry

    assert status == 201, receipt
    assert (receipt["discount_amount"], receipt["earned_points"]) == ("100.00", 27)
    assert Purchase.objects.count() == 1
    assert list(ledger_drift()) == []
    assert "Internal Server Error" not in server.log()

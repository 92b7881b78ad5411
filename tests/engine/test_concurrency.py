"""Concurrent spending of one balance on PostgreSQL, with real threads and connections."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from loyalty.defaults import install_default_program
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.apikeys import create_api_key
from loyalty.engine.ledger import ledger_drift
from loyalty.models import LedgerEntry, ProgramSettings, Purchase, Tier
from members.models import Member
from members.services import enrol_member


@pytest.fixture
def postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and real concurrent writers need PostgreSQL (DATABASE_URL)")
    # transactional_db empties every table after each test, the migration's rows included.
    install_default_program(ProgramSettings, Tier)


def test_twenty_terminals_spending_one_balance_never_overdraw(postgres, store):
    member = enrol_member(phone="+79123456789")
    adjust_points(member_id=member.pk, points=500, reason="opening balance", staff=None)
    _key, raw = create_api_key(store=store, name="till")
    start = threading.Barrier(20)

    def spend(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        try:
            start.wait()
            response = client.post(
                "/api/v1/purchases",
                {
                    "external_id": f"T-{index}",
                    "card_number": member.card_number,
                    "amount": "1000.00",
                    "redeem_points": 100,
                },
                format="json",
            )
            return response.status_code, response.json()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(spend, range(20)))

    codes = sorted(code for code, _body in results)
    errors = {body["error"]["code"] for code, body in results if code != 201}
    # Each success spends 100 and earns floor(900 × 3%) = 27: 500 → 427 → … → 135 → 62. The
    # opening 500 pays for five; the sixth needs the points the earlier ones earned, which a
    # terminal whose purchase time was taken before theirs committed cannot spend yet (points
    # earned later are not available earlier): five or six succeed, never more.
    successes = codes.count(201)
    assert successes in (5, 6)
    assert codes == [201] * successes + [422] * (20 - successes)
    assert errors == {"insufficient_points"}
    member.refresh_from_db()
    assert member.points_balance == 500 - 73 * successes
    assert member.points_debt == 0
    assert Purchase.objects.count() == successes
    assert LedgerEntry.objects.filter(kind="redeem").count() == successes
    assert list(ledger_drift()) == []


def test_the_same_receipt_sent_by_eight_threads_is_recorded_once(postgres, store):
    member = enrol_member(phone="+79123456780")
    _key, raw = create_api_key(store=store, name="till")
    start = threading.Barrier(8)

    def send(_index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        try:
            start.wait()
            response = client.post(
                "/api/v1/purchases",
                {"external_id": "SAME", "card_number": member.card_number, "amount": "1000.00"},
                format="json",
            )
            return response.status_code, response.content
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))

    assert {code for code, _ in results} == {201}
    assert len({content for _, content in results}) == 1
    assert Purchase.objects.count() == 1
    assert Member.objects.get(pk=member.pk).points_balance == 30


def test_a_spend_of_an_expiring_lot_while_expiry_runs_keeps_the_ledger_exact(postgres):
    """The till spends 4 of a lot's 10 points at a moment just before its expiry; the expiry
    job (as of just after) reads the lot with 10 and waits on the till's row lock. Once the till
    commits, the job leaves the changed lot alone (no entry of -10 for the 6 left), and the next
    run expires the 6."""
    from datetime import timedelta

    from django.db import transaction

    from loyalty.engine.adjustments import apply_adjustment
    from loyalty.jobs.runner import run_job
    from loyalty.models import JobRun, PointsLot

    member = enrol_member(phone="+79123456781")
    adjust_points(member_id=member.pk, points=10, reason="opening balance", staff=None)
    lot = PointsLot.objects.get(member=member)
    spent, commit = threading.Event(), threading.Event()
    runs = []

    def till():
        try:
            with transaction.atomic():  # the member's row lock first, as every spend takes it
                apply_adjustment(
                    member_id=member.pk,
                    points=-4,
                    reason="spent at the till",
                    staff=None,
                    now=lot.expires_at - timedelta(minutes=1),
                )
                spent.set()
                assert commit.wait(30)
        finally:
            spent.set()
            connections.close_all()

    def expiry():
        try:
            runs.append(run_job("expire_points", as_of=lot.expires_at + timedelta(minutes=1)))
        finally:
            connections.close_all()

    till_thread = threading.Thread(target=till)
    till_thread.start()
    assert spent.wait(30)
    expiry_thread = threading.Thread(target=expiry)
    expiry_thread.start()
    try:
        _wait_for_lock_wait("UPDATE loyalty_pointslot")
    finally:
        commit.set()
        till_thread.join(30)
        expiry_thread.join(30)

    assert runs[0].status == JobRun.Status.DONE
    assert runs[0].rows == 0
    lot.refresh_from_db()
    assert lot.remaining == 6
    assert not LedgerEntry.objects.filter(kind="expire").exists()
    assert list(ledger_drift()) == []

    rerun = run_job("expire_points", as_of=lot.expires_at + timedelta(minutes=2))

    assert rerun.rows == 1
    assert list(LedgerEntry.objects.filter(kind="expire").values_list("points", flat=True)) == [-6]
    member.refresh_from_db()
    assert member.points_balance == 0
    assert list(ledger_drift()) == []


def _wait_for_lock_wait(statement, seconds=30):
    """Until another connection's ``statement`` waits on a row lock (fails after ``seconds``)."""
    import time

    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE %s AND pid <> pg_backend_pid()",
                [f"%{statement}%"],
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"no connection waited on a lock in {statement!r}")

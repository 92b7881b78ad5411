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
    # Each success spends 100 and earns floor(900 × 3%) = 27: 500 → 427 → … → 62.
    assert codes == [201] * 6 + [422] * 14
    assert errors == {"insufficient_points"}
    member.refresh_from_db()
    assert member.points_balance == 62
    assert member.points_debt == 0
    assert Purchase.objects.count() == 6
    assert LedgerEntry.objects.filter(kind="redeem").count() == 6
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

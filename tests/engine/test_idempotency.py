"""Retries are safe: a replay returns the first answer and writes nothing (SPEC section 4)."""

from loyalty.models import LedgerEntry, PointsLot, Purchase, Refund


def counts():
    return (
        Purchase.objects.count(),
        LedgerEntry.objects.count(),
        PointsLot.objects.count(),
        Refund.objects.count(),
    )


def test_replayed_purchase_returns_the_same_status_and_body_and_writes_nothing(pos, api):
    card = pos.enrol()["card_number"]
    pos.buy(card, "10000.00")
    body = {"external_id": "R-77", "card_number": card, "amount": "1000.00", "redeem_points": 50}
    first = api.post("/api/v1/purchases", body, format="json")
    before = counts()
    replay = api.post("/api/v1/purchases", body, format="json")
    assert replay.status_code == first.status_code == 201
    assert replay.content == first.content
    assert counts() == before


def test_same_receipt_with_another_body_is_an_idempotency_conflict(pos, api):
    card = pos.enrol()["card_number"]
    api.post(
        "/api/v1/purchases",
        {"external_id": "R-1", "card_number": card, "amount": "1000.00"},
        format="json",
    )
    before = counts()
    response = api.post(
        "/api/v1/purchases",
        {"external_id": "R-1", "card_number": card, "amount": "1000.01"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert counts() == before


def test_the_same_receipt_number_in_another_store_is_another_purchase(pos, api, other_api):
    card = pos.enrol()["card_number"]
    body = {"external_id": "R-1", "card_number": card, "amount": "1000.00"}
    assert api.post("/api/v1/purchases", body, format="json").status_code == 201
    assert other_api.post("/api/v1/purchases", body, format="json").status_code == 201
    assert pos.member(card)["balance"]["available"] == 60


def test_refused_purchase_stores_nothing_so_a_corrected_retry_succeeds(pos, api):
    card = pos.enrol()["card_number"]
    body = {"external_id": "R-5", "card_number": card, "amount": "1000.00", "redeem_points": 10}
    assert api.post("/api/v1/purchases", body, format="json").status_code == 422
    body["redeem_points"] = 0
    assert api.post("/api/v1/purchases", body, format="json").status_code == 201


def test_replayed_refund_returns_the_first_answer(pos, api):
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "1000.00")
    url = f"/api/v1/purchases/{receipt['external_id']}/refunds"
    first = api.post(url, {"refund_id": "F-1", "amount": "500.00"}, format="json")
    before = counts()
    replay = api.post(url, {"refund_id": "F-1", "amount": "500.00"}, format="json")
    assert (replay.status_code, replay.content) == (first.status_code, first.content)
    assert counts() == before
    conflict = api.post(url, {"refund_id": "F-1", "amount": "400.00"}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert pos.member(card)["balance"]["available"] == 15

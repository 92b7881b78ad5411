"""A receipt's lines add up to its amount, to the kopeck, however the purchase is recorded.

The rule lives in the purchase service (loyalty.engine.purchases.check_lines_add_up), so a
till, a management command or the back-office calling the service directly meets it as the API
does.
"""

from decimal import Decimal

import pytest
from django.utils import timezone, translation

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.purchases import Line, check_coupon, quote_purchase, record_purchase
from loyalty.models import Coupon, Purchase, PurchaseLine

# 0.333 × 100.00 = 33.30 and 3 × 33.33 = 99.99: the lines come to 133.29.
LINES = (
    Line(sku="MILK", quantity=Decimal("0.333"), unit_price=Decimal("100.00")),
    Line(sku="BREAD", quantity=Decimal("3"), unit_price=Decimal("33.33")),
)
OFF_BY_A_KOPECK = "The lines add up to 133.29, not to the amount 133.30."


def _refusal(call, language="en"):
    with translation.override(language), pytest.raises(LoyaltyError) as caught:
        call()
    error = caught.value
    return error.code, error.status_code, error.fields


def test_recording_a_purchase_whose_lines_miss_the_amount_is_refused_and_writes_nothing(stores):
    refusal = _refusal(
        lambda: record_purchase(
            store=stores["MSK-01"],
            external_id="R-1",
            amount=Decimal("133.30"),
            occurred_at=timezone.now(),
            lines=LINES,
        )
    )
    assert refusal == ("invalid", 400, {"lines": [OFF_BY_A_KOPECK]})
    assert Purchase.objects.count() == 0
    assert PurchaseLine.objects.count() == 0


def test_recording_a_purchase_whose_lines_make_the_amount_keeps_them(stores):
    record_purchase(
        store=stores["MSK-01"],
        external_id="R-1",
        amount=Decimal("133.29"),
        occurred_at=timezone.now(),
        lines=LINES,
    )
    purchase = Purchase.objects.get()
    assert purchase.amount == Decimal("133.29")
    assert sorted(purchase.lines.values_list("sku", "amount")) == [
        ("BREAD", Decimal("99.99")),
        ("MILK", Decimal("33.30")),
    ]


def test_a_receipt_number_already_used_is_still_refused_for_lines_that_miss(stores):
    store = stores["MSK-01"]
    record_purchase(store=store, external_id="R-1", amount="133.29", occurred_at=None, lines=LINES)
    refusal = _refusal(
        lambda: record_purchase(
            store=store, external_id="R-1", amount="133.30", occurred_at=None, lines=LINES
        )
    )
    assert refusal == ("invalid", 400, {"lines": [OFF_BY_A_KOPECK]})
    assert Purchase.objects.count() == 1


def test_a_quote_whose_lines_miss_the_amount_is_refused(stores):
    refusal = _refusal(lambda: quote_purchase(amount=Decimal("133.30"), lines=LINES))
    assert refusal == ("invalid", 400, {"lines": [OFF_BY_A_KOPECK]})


def test_a_coupon_check_whose_lines_miss_the_amount_is_refused(stores):
    Coupon.objects.create(code="TEN", kind="percent", value=Decimal("10"))
    refusal = _refusal(lambda: check_coupon(code="TEN", amount=Decimal("133.30"), lines=LINES))
    assert refusal == ("invalid", 400, {"lines": [OFF_BY_A_KOPECK]})
    assert check_coupon(code="TEN", amount=Decimal("133.29"), lines=LINES).discount == Decimal(
        "13.33"
    )


def test_the_refusal_is_in_the_callers_language(stores):
    refusal = _refusal(lambda: quote_purchase(amount=Decimal("133.30"), lines=LINES), "ru")
    assert refusal[2] == {"lines": ["Сумма строк чека — 133.29, а не 133.30."]}


def test_the_coupon_check_api_names_lines_that_miss_the_amount(api):
    Coupon.objects.create(code="TEN", kind="percent", value=Decimal("10"))
    lines = [
        {"sku": "MILK", "quantity": "0.333", "unit_price": "100.00"},
        {"sku": "BREAD", "quantity": "3", "unit_price": "33.33"},
    ]
    response = api.post(
        "/api/v1/coupons/TEN/validate", {"amount": "133.30", "lines": lines}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "The request has invalid fields.",
        "fields": {"lines": [OFF_BY_A_KOPECK]},
    }


@pytest.mark.parametrize(
    ("quantity", "status"),
    [(2, 201), ("2", 201), ("2.000", 201), (True, 400), (2.0, 400), (0, 400), (-2, 400)],
)
def test_a_quantity_is_a_decimal_string_or_a_whole_number_of_pieces(api, quantity, status):
    lines = [{"sku": "MILK", "quantity": quantity, "unit_price": "50.00"}]
    body = {"external_id": "Q-1", "amount": "100.00", "lines": lines}
    response = api.post("/api/v1/purchases", body, format="json")
    assert response.status_code == status, response.json()
    if status == 201:
        assert PurchaseLine.objects.get().quantity == Decimal("2")
    else:
        assert list(response.json()["error"]["fields"]) == ["lines"]
        assert Purchase.objects.count() == 0

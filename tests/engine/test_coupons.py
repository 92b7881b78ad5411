"""Coupons at the till: validation, their effect on the purchase, and their limits."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from loyalty.models import Coupon, CouponRedemption, Purchase
from members.models import Member


def validate(api, code, **body):
    return api.post(f"/api/v1/coupons/{code}/validate", body, format="json")


def test_percent_coupon_discounts_before_points_and_earning(pos, api):
    Coupon.objects.create(code="TEN", kind="percent", value=Decimal("10"))
    card = pos.enrol()["card_number"]
    pos.buy(card, "20000.00")  # 600 points, Silver
    # Points may pay half of what is left after the coupon: 50% of 900.00.
    body = pos.buy(card, "1000.00", coupon_code="TEN", redeem_points=451, expect=422)
    assert body["error"]["code"] == "redeem_limit_exceeded"
    assert Coupon.objects.get().uses == 0
    receipt = pos.buy(card, "1000.00", coupon_code="ten", redeem_points=450)
    assert receipt["discount_amount"] == "100.00"
    assert receipt["paid_amount"] == "450.00"
    assert receipt["earned_points"] == 22  # 5% of 450.00, rounded down
    assert Coupon.objects.get().uses == 1


def test_validate_says_whether_a_coupon_applies_and_its_effect(pos, api):
    Coupon.objects.create(code="MINUS300", kind="fixed", value=Decimal("300"), min_amount=1000)
    ok = validate(api, "MINUS300", amount="1500.00")
    assert ok.status_code == 200
    assert ok.json() == {
        "code": "MINUS300",
        "applicable": True,
        "reason": "",
        "kind": "fixed",
        "discount_amount": "300.00",
    }
    too_small = validate(api, "MINUS300", amount="999.99").json()
    assert too_small["applicable"] is False
    assert "1000" in too_small["reason"]
    assert validate(api, "NOSUCH", amount="10.00").json()["applicable"] is False
    assert Purchase.objects.count() == 0


def test_bogo_and_free_product_need_the_product_in_the_basket(api):
    Coupon.objects.create(code="BOGO", kind="bogo", sku="LATTE")
    Coupon.objects.create(code="FREE", kind="free_product", sku="CAKE")
    lines = [
        {"sku": "LATTE", "quantity": "3", "unit_price": "250.00"},
        {"sku": "CAKE", "quantity": "1", "unit_price": "300.00"},
    ]
    assert validate(api, "BOGO", amount="1050.00", lines=lines).json()["discount_amount"] == (
        "250.00"
    )
    assert validate(api, "FREE", amount="1050.00", lines=lines).json()["discount_amount"] == (
        "300.00"
    )
    assert validate(api, "FREE", amount="750.00", lines=lines[:1]).json()["applicable"] is False


def test_a_used_up_coupon_is_refused_and_nothing_is_recorded(pos):
    Coupon.objects.create(code="ONCE", kind="fixed", value=Decimal("50"), max_uses=1)
    card = pos.enrol()["card_number"]
    pos.buy(card, "500.00", coupon_code="ONCE")
    error = pos.buy(card, "500.00", coupon_code="ONCE", expect=422)["error"]
    assert error["code"] == "coupon_not_applicable"
    assert Purchase.objects.count() == 1
    assert CouponRedemption.objects.count() == 1


def test_a_personal_coupon_works_once_and_only_for_its_member(pos):
    owner = pos.enrol()["card_number"]
    stranger = pos.enrol()["card_number"]
    Coupon.objects.create(
        code="BDAY-1",
        kind="percent",
        value=Decimal("20"),
        member=Member.objects.get(card_number=owner),
        valid_until=timezone.now() + timedelta(days=30),
    )
    assert pos.buy(stranger, "100.00", coupon_code="BDAY-1", expect=422)["error"]["code"] == (
        "coupon_not_applicable"
    )
    assert pos.buy(owner, "100.00", coupon_code="BDAY-1")["discount_amount"] == "20.00"
    assert pos.buy(owner, "100.00", coupon_code="BDAY-1", expect=422)["error"]["code"] == (
        "coupon_not_applicable"
    )


def test_an_expired_coupon_is_refused(pos):
    Coupon.objects.create(
        code="OLD",
        kind="fixed",
        value=Decimal("10"),
        valid_until=timezone.now() - timedelta(seconds=1),
    )
    assert pos.buy(None, "100.00", coupon_code="OLD", expect=422)["error"]["code"] == (
        "coupon_not_applicable"
    )

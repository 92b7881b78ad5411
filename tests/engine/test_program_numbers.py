"""The default program's numbers, end to end through the public API (SPEC sections 2-4)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.engine import ledger
from loyalty.engine.adjustments import adjust_points
from loyalty.models import LedgerEntry, PointsLot, ProductRule, ProgramSettings, Purchase, Tier


def test_new_member_earns_3_then_5_percent_after_reaching_silver(pos):
    card = pos.enrol()["card_number"]

    first = pos.buy(card, "1000.00")
    assert first["earned_points"] == 30
    assert first["tier"] == {"code": "bronze", "name": "Bronze"}

    second = pos.buy(card, "14000.00")
    # The purchase that crosses the threshold earns at the old rate (3% of 14,000).
    assert second["earned_points"] == 420
    assert second["tier"] == {"code": "silver", "name": "Silver"}
    assert second["balance"] == {"available": 450, "pending": 0}

    third = pos.buy(card, "1000.00", redeem_points=450)
    assert third["redeemed_points"] == 450
    assert third["paid_amount"] == "550.00"
    assert third["earned_points"] == 27  # 5% of 550.00
    assert third["balance"] == {"available": 27, "pending": 0}
    assert pos.member(card)["balance"] == {"available": 27, "pending": 0}


def test_quote_tells_the_cap_and_the_earning_without_recording(pos, api):
    card = pos.enrol()["card_number"]
    pos.buy(card, "20000.00")  # 600 points, Silver from now on
    response = api.post(
        "/api/v1/purchases/quote",
        {"card_number": card, "amount": "999.99", "redeem_points": 100},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "amount": "999.99",
        "discount_amount": "0.00",
        "earn_points": 44,  # floor(899.99 × 5%)
        "max_redeem_points": 499,  # floor(50% × 999.99), not 500
        "redeem_points": 100,
        "payable_amount": "899.99",
        "free_delivery": False,  # a Silver perk it is not
    }
    assert Purchase.objects.count() == 1


def test_max_redeem_never_exceeds_the_available_balance(pos, api):
    card = pos.enrol()["card_number"]
    pos.buy(card, "1000.00")  # 30 points
    response = api.post(
        "/api/v1/purchases/quote", {"card_number": card, "amount": "5000.00"}, format="json"
    )
    assert response.json()["max_redeem_points"] == 30


def test_spending_more_than_the_balance_is_insufficient_points(pos):
    card = pos.enrol()["card_number"]
    pos.buy(card, "1000.00")  # 30 points
    error = pos.buy(card, "1000.00", redeem_points=31, expect=422)["error"]
    assert error["code"] == "insufficient_points"
    assert "redeem_points" in error["fields"]
    assert Purchase.objects.count() == 1
    assert pos.member(card)["balance"]["available"] == 30


def test_spending_more_than_half_the_amount_is_redeem_limit_exceeded(pos):
    card = pos.enrol()["card_number"]
    pos.buy(card, "20000.00")  # 600 points
    error = pos.buy(card, "999.99", redeem_points=500, expect=422)["error"]
    assert error["code"] == "redeem_limit_exceeded"
    accepted = pos.buy(card, "999.99", redeem_points=499)
    assert accepted["paid_amount"] == "500.99"


def test_partial_refund_reverses_points_in_proportion_rounding_down(pos, earn_rate):
    earn_rate("0.095")
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "1000.00")
    assert receipt["earned_points"] == 95
    reversed_ = [
        pos.refund(receipt["external_id"], amount)["reversed_points"]
        for amount in ("333.33", "333.33", "333.34")
    ]
    assert reversed_ == [31, 32, 32]
    assert pos.member(card)["balance"] == {"available": 0, "pending": 0}


def test_refund_gives_spent_points_back_by_the_same_cumulative_rule(pos):
    card = pos.enrol()["card_number"]
    pos.buy(card, "10000.00")  # 300 points
    receipt = pos.buy(card, "1000.00", redeem_points=101)  # earns floor(899 × 3%) = 26
    assert receipt["earned_points"] == 26
    first = pos.refund(receipt["external_id"], "500.00")
    assert (first["returned_points"], first["reversed_points"]) == (50, 13)
    second = pos.refund(receipt["external_id"], "500.00")
    assert (second["returned_points"], second["reversed_points"]) == (51, 13)
    assert second["balance"]["available"] == 300


def test_refund_beyond_what_remains_is_refused(pos):
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "1000.00")
    pos.refund(receipt["external_id"], "600.00")
    error = pos.refund(receipt["external_id"], "400.01", expect=422)["error"]
    assert error["code"] == "refund_exceeds_purchase"
    assert LedgerEntry.objects.filter(kind="refund_reversal").count() == 1


def test_reversal_of_spent_points_leaves_a_debt_that_later_earnings_repay(pos):
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "10000.00")  # 300 points
    pos.buy(card, "1000.00", redeem_points=300)  # spends them all, earns 21
    pos.refund(receipt["external_id"], "10000.00")  # reverses 300: 21 from lots, 279 owed
    member = pos.member(card)
    assert member["balance"]["available"] == -279
    pos.buy(card, "10000.00")  # earns 300: 279 repay the debt
    assert pos.member(card)["balance"]["available"] == 21


def test_anonymous_purchase_is_recorded_without_points(pos):
    body = pos.buy(None, "500.00")
    assert body["card_number"] is None
    assert body["earned_points"] == 0
    assert body["balance"] is None
    assert Purchase.objects.get(external_id=body["external_id"]).member is None
    assert LedgerEntry.objects.count() == 0


def test_points_spent_come_from_the_lot_that_expires_first(pos):
    card = pos.enrol()["card_number"]
    pos.buy(card, "10000.00")  # 300 points expiring in 365 days
    member_id = Purchase.objects.get(amount="10000.00").member_id
    adjust_points(
        member_id=member_id,
        points=100,
        reason="goodwill",
        staff=None,
        now=timezone.now() - timedelta(days=300),  # expires in 65 days
    )
    pos.buy(card, "1000.00", redeem_points=150)
    remaining = sorted(PointsLot.objects.values_list("points", "remaining"))
    # 100 from the lot expiring in 65 days, 50 from the other; 850.00 paid earns 25.
    assert remaining == [(25, 25), (100, 0), (300, 250)]


@pytest.mark.parametrize("lots_read", [64, 2], ids=["added-up", "from-the-cached-sum"])
def test_look_ups_and_purchases_count_only_the_points_available_now(
    pos, api, monkeypatch, lots_read
):
    # A purchase adds up a member's open lots, or past OPEN_LOTS_READ of them takes the cached
    # sum less the held-back lots: the same balance either way.
    monkeypatch.setattr(ledger, "OPEN_LOTS_READ", lots_read)
    from_cache = []
    real_balance_from_cache = ledger.balance_from_cache
    monkeypatch.setattr(
        ledger,
        "balance_from_cache",
        lambda *args: from_cache.append(args) or real_balance_from_cache(*args),
    )
    enrolled = pos.enrol()
    card, phone = enrolled["card_number"], enrolled["phone"]
    pos.buy(card, "1000.00")  # 30 points, available now
    pos.buy(card, "2000.00")  # 60 points, made pending below
    pos.buy(card, "500.00")  # 15 points, expired below (the expiry job has not run yet)
    pos.buy(card, "100.00", redeem_points=20)  # 20 of the first 30 spent; 2 points earned
    now = timezone.now()
    lots = list(PointsLot.objects.filter(member__card_number=card).order_by("id"))
    PointsLot.objects.filter(pk=lots[1].pk).update(available_from=now + timedelta(days=3))
    PointsLot.objects.filter(pk=lots[2].pk).update(
        available_from=now - timedelta(days=400), expires_at=now - timedelta(days=1)
    )
    expected = {"available": 30 - 20 + 2, "pending": 60}
    assert pos.member(card)["balance"] == expected
    found = api.get("/api/v1/members", {"phone": phone}).json()
    assert found["count"] == 1
    assert found["results"][0]["card_number"] == card
    assert found["results"][0]["balance"] == expected
    assert api.get("/api/v1/members", {"phone": "+79990000000"}).json() == {
        "count": 0,
        "results": [],
    }
    # A purchase sees the same balance: 12 may be spent, 13 may not.
    pos.buy(card, "100.00", redeem_points=13, expect=422)
    assert pos.buy(card, "100.00", redeem_points=12)["balance"] == {"available": 2, "pending": 60}
    assert bool(from_cache) == (lots_read == 2)  # the path the parameter names was taken


def test_a_tier_discount_comes_off_first_at_checkout(pos, api):
    # SPEC 2 (discount program) and 3: paid = amount − discounts − points spent; points may pay
    # up to 50% of what is left after the discount; the earning is on what is paid.
    Tier.objects.filter(code="silver").update(discount_percent=Decimal("5"))
    card = pos.enrol()["card_number"]
    first = pos.buy(card, "15000.00")  # Bronze: no discount, 450 points, Silver from now on
    assert (first["discount_amount"], first["earned_points"]) == ("0.00", 450)
    assert first["tier"]["code"] == "silver"

    quote = api.post(
        "/api/v1/purchases/quote",
        {"card_number": card, "amount": "1000.00", "redeem_points": 100},
        format="json",
    )
    assert quote.status_code == 200
    assert quote.json() == {
        "amount": "1000.00",
        "discount_amount": "50.00",  # 5% of 1,000.00
        "earn_points": 42,  # floor((1000.00 − 50.00 − 100) × 5%)
        "max_redeem_points": 450,  # the cap floor(50% × 950.00) = 475 is above the balance
        "redeem_points": 100,
        "payable_amount": "850.00",
        "free_delivery": False,
    }

    receipt = pos.buy(card, "1000.00", redeem_points=100)
    assert receipt["discount_amount"] == "50.00"
    assert receipt["redeemed_points"] == 100
    assert receipt["paid_amount"] == "850.00"
    assert receipt["earned_points"] == 42
    assert receipt["balance"] == {"available": 392, "pending": 0}  # 450 − 100 + 42
    purchase = Purchase.objects.get(external_id=receipt["external_id"])
    assert (purchase.discount_amount, purchase.paid_amount) == (
        Decimal("50.00"),
        Decimal("850.00"),
    )


def test_the_tier_discount_lowers_the_share_points_may_pay(pos):
    Tier.objects.filter(code="silver").update(discount_percent=Decimal("10"))
    card = pos.enrol()["card_number"]
    pos.buy(card, "20000.00")  # 600 points at Bronze, Silver from now on
    # 1,000.00 less 10% is 900.00, of which points may pay 450, not 500.
    error = pos.buy(card, "1000.00", redeem_points=451, expect=422)["error"]
    assert error["code"] == "redeem_limit_exceeded"
    receipt = pos.buy(card, "1000.00", redeem_points=450)
    assert (receipt["discount_amount"], receipt["paid_amount"]) == ("100.00", "450.00")
    assert receipt["earned_points"] == 22  # floor(450.00 × 5%)


def _lines(*lines):
    return [
        {"sku": sku, "category": category, "quantity": quantity, "unit_price": unit_price}
        for sku, category, quantity, unit_price in lines
    ]


BASKET = _lines(
    ("LATTE", "coffee", "2", "200.00"),  # 400.00, boosted ×2
    ("CIGS", "tobacco", "1", "300.00"),  # 300.00, excluded
    ("BREAD", "bakery", "3", "100.00"),  # 300.00, as usual
)


def test_excluded_lines_earn_nothing_and_boosted_lines_earn_double(pos):
    ProductRule.objects.create(kind=ProductRule.Kind.EXCLUDE, category="tobacco")
    ProductRule.objects.create(kind=ProductRule.Kind.BOOST, category="coffee", multiplier=2)
    card = pos.enrol()["card_number"]
    # 3% of (400.00 × 2 + 300.00 × 0 + 300.00) = 33, where the plain basket earns 30.
    receipt = pos.buy(card, "1000.00", lines=BASKET)
    assert receipt["earned_points"] == 33
    assert pos.buy(card, "1000.00")["earned_points"] == 30  # no lines: no product rule applies


def test_product_rules_weigh_what_is_paid_after_points(pos):
    ProductRule.objects.create(kind=ProductRule.Kind.EXCLUDE, category="tobacco")
    ProductRule.objects.create(kind=ProductRule.Kind.BOOST, category="coffee", multiplier=2)
    card = pos.enrol()["card_number"]
    pos.buy(card, "10000.00")  # 300 points
    receipt = pos.buy(card, "1000.00", lines=BASKET, redeem_points=100)
    assert receipt["paid_amount"] == "900.00"
    assert receipt["earned_points"] == 29  # floor(900.00 × 3% × 1.1) = floor(29.7)


def test_a_sku_rule_names_one_product_and_not_its_category(pos):
    ProductRule.objects.create(kind=ProductRule.Kind.EXCLUDE, sku="CIGS")
    card = pos.enrol()["card_number"]
    basket = _lines(("CIGS", "tobacco", "1", "500.00"), ("CIGARS", "tobacco", "1", "500.00"))
    assert pos.buy(card, "1000.00", lines=basket)["earned_points"] == 15  # 3% of 500.00


def test_an_inactive_product_rule_changes_nothing(pos):
    ProductRule.objects.create(kind=ProductRule.Kind.EXCLUDE, category="tobacco", is_active=False)
    card = pos.enrol()["card_number"]
    assert pos.buy(card, "1000.00", lines=BASKET)["earned_points"] == 30


def test_points_pay_only_for_the_lines_they_may_pay_for(pos, api):
    ProductRule.objects.create(kind=ProductRule.Kind.NO_REDEEM, category="tobacco")
    card = pos.enrol()["card_number"]
    pos.buy(card, "40000.00")  # 1,200 points at Bronze, Silver from now on
    # Tobacco is 300.00 of 1,000.00: points may pay half of the other 700.00, 350 not 500.
    quote = api.post(
        "/api/v1/purchases/quote",
        {"card_number": card, "amount": "1000.00", "lines": BASKET},
        format="json",
    ).json()
    assert quote["max_redeem_points"] == 350
    error = pos.buy(card, "1000.00", lines=BASKET, redeem_points=351, expect=422)["error"]
    assert error["code"] == "redeem_limit_exceeded"
    receipt = pos.buy(card, "1000.00", lines=BASKET, redeem_points=350)
    assert receipt["paid_amount"] == "650.00"
    assert receipt["earned_points"] == 32  # the line still earns: floor(650.00 × 5%)
    assert pos.buy(card, "1000.00", redeem_points=500)["paid_amount"] == "500.00"  # no lines


def test_a_purchase_below_the_minimum_earns_nothing(pos):
    program = ProgramSettings.objects.get()
    program.min_purchase_amount = Decimal("500.00")
    program.save()
    card = pos.enrol()["card_number"]
    below = pos.buy(card, "499.99")
    assert (below["earned_points"], below["paid_amount"]) == (0, "499.99")
    assert pos.buy(card, "500.00")["earned_points"] == 15  # the minimum itself earns
    assert pos.member(card)["balance"] == {"available": 15, "pending": 0}


def test_gold_perks_are_in_the_look_up_and_free_delivery_on_the_quote(pos, api):
    card = pos.enrol()["card_number"]
    assert pos.member(card)["perks"] == []
    pos.buy(card, "50000.00")  # Gold from now on: earn 7%, perk free delivery
    member = pos.member(card)
    assert member["tier"]["code"] == "gold"
    assert member["perks"] == [{"code": "free_delivery", "name": "Free delivery"}]
    quote = api.post(
        "/api/v1/purchases/quote", {"card_number": card, "amount": "100.00"}, format="json"
    ).json()
    assert quote["free_delivery"] is True
    anonymous = api.post("/api/v1/purchases/quote", {"amount": "100.00"}, format="json").json()
    assert anonymous["free_delivery"] is False

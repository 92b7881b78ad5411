"""Paid membership plans and product rules on the Program page; joining a plan from the member
page (issue 21 item 3)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.models import AuditLog, Membership, MembershipPlan, ProductRule, Tier

PLAN = {
    "code": "plus",
    "name": "Plus",
    "name_ru": "Плюс",
    "fee": "299.00",
    "period_days": "30",
    "trial_days": "14",
    "bonus_points": "100",
    "perks": ["free_delivery"],
    "is_active": "on",
}


@pytest.fixture
def plus(db):
    return MembershipPlan.objects.create(
        code="plus",
        name="Plus",
        name_ru="Плюс",
        fee=Decimal("299.00"),
        trial_days=14,
        bonus_points=100,
        tier=Tier.objects.get(code="gold"),
    )


def test_an_administrator_creates_a_plan_and_sees_it_on_the_program_page(client_as, stores):
    client = client_as("admin")
    gold = Tier.objects.get(code="gold")
    response = client.post(reverse("loyalty:plan-create"), {**PLAN, "tier": gold.pk})
    assert response.status_code == 302
    plan = MembershipPlan.objects.get()
    assert (plan.fee, plan.period_days, plan.trial_days, plan.bonus_points, plan.tier) == (
        Decimal("299.00"),
        30,
        14,
        100,
        gold,
    )
    assert plan.perks == ["free_delivery"]
    assert AuditLog.objects.get().action == "membership_plan.create"
    page = client.get(reverse("loyalty:program"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Плюс" in page and "Бесплатная доставка" in page


def test_a_plan_with_a_negative_fee_is_refused_in_the_users_language(client_as, stores):
    response = client_as("admin").post(
        reverse("loyalty:plan-create"),
        {**PLAN, "fee": "-1.00", "period_days": "0"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["fee"] == ["Взнос не может быть отрицательным."]
    assert errors["period_days"] == ["Период — не меньше одного дня."]
    assert not MembershipPlan.objects.exists()
    assert not AuditLog.objects.exists()


def test_editing_a_plan_audits_what_changed(client_as, stores, plus):
    response = client_as("admin").post(
        reverse("loyalty:plan-edit", args=[plus.pk]),
        {**PLAN, "fee": "349.00", "tier": plus.tier_id},
    )
    assert response.status_code == 302
    plus.refresh_from_db()
    assert plus.fee == Decimal("349.00")
    entry = AuditLog.objects.get()
    assert entry.action == "membership_plan.edit"
    assert (entry.before["fee"], entry.after["fee"]) == ("299.00", "349.00")


@pytest.mark.parametrize("persona", ["manager", "support", "marketer"])
def test_only_administrators_edit_plans_and_rules(client_as, stores, persona):
    client = client_as(persona)
    assert client.post(reverse("loyalty:plan-create"), PLAN).status_code == 403
    rule = {"kind": "exclude", "category": "tobacco", "multiplier": "1"}
    assert client.post(reverse("loyalty:product-rule-create"), rule).status_code == 403
    assert not MembershipPlan.objects.exists() and not ProductRule.objects.exists()


def test_product_rules_are_made_on_their_page(client_as, stores):
    client = client_as("admin")
    url = reverse("loyalty:product-rule-create")
    boost = {"kind": "boost", "category": "coffee", "multiplier": "2", "is_active": "on"}
    assert client.post(url, boost).status_code == 302
    # A rule that does not multiply keeps the neutral multiplier, whatever was typed.
    no_redeem = {"kind": "no_redeem", "sku": "CIGS", "multiplier": "5", "is_active": "on"}
    assert client.post(url, no_redeem).status_code == 302
    rules = ProductRule.objects.order_by("kind").values_list(
        "kind", "category", "sku", "multiplier"
    )
    assert list(rules) == [
        ("boost", "coffee", "", Decimal("2.00")),
        ("no_redeem", "", "CIGS", Decimal("1.00")),
    ]
    assert sorted(AuditLog.objects.values_list("action", flat=True)) == ["product_rule.create"] * 2
    page = client.get(reverse("loyalty:program"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Баллами нельзя оплатить" in page and "×2" in page


def test_a_product_rule_must_name_a_product(client_as, stores):
    response = client_as("admin").post(
        reverse("loyalty:product-rule-create"),
        {"kind": "boost", "category": "", "sku": "", "multiplier": "0"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    errors = response.context["form"].errors
    assert errors["category"] == ["Укажите категорию или артикул."]
    assert errors["multiplier"] == ["Повышающий множитель должен быть больше 0."]
    assert not ProductRule.objects.exists()


def test_a_member_joins_a_paid_plan_at_the_counter(client_as, make_member, plus):
    member = make_member("MSK-01")
    client = client_as("manager")
    url = reverse("members:member-membership-join", args=[member.card_number])
    response = client.post(url, {"plan": plus.pk})
    assert response.status_code == 302
    membership = Membership.objects.get(member=member)
    assert (membership.status, membership.auto_renew) == ("active", True)
    member.refresh_from_db()
    assert member.points_balance == 100  # the plan's bonus for the first paid period
    assert member.tier.code == "gold"
    page = client.get(reverse("members:member-detail", args=[member.card_number]))
    assert "Плюс" in page.content.decode()  # the page's language: Russian by default

    # A second membership while one is live is refused on the form, nothing written.
    again = client.post(url, {"plan": plus.pk}, HTTP_ACCEPT_LANGUAGE="ru")
    assert again.status_code == 422
    assert "У участника уже есть платное членство." in again.content.decode()
    assert Membership.objects.filter(member=member).count() == 1

    cancel = reverse("members:member-membership-cancel", args=[member.card_number])
    assert client.post(cancel, {"membership": membership.pk}).status_code == 302
    membership.refresh_from_db()
    assert (membership.status, membership.auto_renew) == ("active", False)
    assert list(
        AuditLog.objects.filter(member=member).order_by("id").values_list("action", flat=True)
    ) == ["membership.join", "membership.cancel"]
    # Cancelling again (a stale page) says so and changes nothing.
    stale = client.post(cancel, {"membership": membership.pk}, HTTP_ACCEPT_LANGUAGE="ru")
    assert stale.status_code == 422
    assert AuditLog.objects.filter(action="membership.cancel").count() == 1


def test_a_free_trial_is_once_per_member_and_plan(client_as, make_member, plus):
    member = make_member("MSK-01")
    client = client_as("manager")
    url = reverse("members:member-membership-join", args=[member.card_number])
    assert client.post(url, {"plan": plus.pk, "trial": "on"}).status_code == 302
    trial = Membership.objects.get(member=member)
    assert trial.status == "trial"
    member.refresh_from_db()
    assert member.points_balance == 0  # no bonus for a free trial
    Membership.objects.filter(pk=trial.pk).update(status="lapsed")
    second = client.post(url, {"plan": plus.pk, "trial": "on"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert second.status_code == 422
    assert "Для этого участника по этому тарифу нет пробного периода." in second.content.decode()
    assert Membership.objects.filter(member=member).count() == 1


def test_a_manager_cannot_join_a_member_of_another_store(client_as, make_member, plus):
    member = make_member("SPB-01")
    url = reverse("members:member-membership-join", args=[member.card_number])
    assert client_as("manager").post(url, {"plan": plus.pk}).status_code == 404
    assert client_as("marketer").post(url, {"plan": plus.pk}).status_code == 403
    assert not Membership.objects.exists()

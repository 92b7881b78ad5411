"""Paid memberships through the API: the plans on sale, joining (paid or free trial), the live
membership, cancelling the renewal (issue 21 item 3)."""

from decimal import Decimal

import pytest

from loyalty.models import AuditLog, Membership, MembershipPeriod, MembershipPlan, Tier
from members.models import Member


@pytest.fixture
def plans(db):
    gold = Tier.objects.get(code="gold")
    plus = MembershipPlan.objects.create(
        code="plus",
        name="Plus",
        name_ru="Плюс",
        fee=Decimal("299.00"),
        period_days=30,
        trial_days=14,
        bonus_points=100,
        tier=gold,
        perks=["free_delivery"],
    )
    MembershipPlan.objects.create(code="old", name="Old", fee=Decimal("99.00"), is_active=False)
    return plus


def join(api, card, **body):
    return api.post(f"/api/v1/members/{card}/membership", body, format="json")


def test_the_plans_on_sale_are_listed(api, plans):
    response = api.get("/api/v1/membership-plans", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "code": "plus",
                "name": "Плюс",
                "fee": "299.00",
                "period_days": 30,
                "trial_days": 14,
                "tier": "gold",
                "bonus_points": 100,
                "perks": ["free_delivery"],
            }
        ]
    }


def test_joining_a_plan_grants_its_tier_and_bonus_and_a_second_join_is_refused(api, pos, plans):
    card = pos.enrol()["card_number"]
    response = join(api, card, plan="plus")
    assert response.status_code == 201
    body = response.json()
    assert (body["plan"], body["status"], body["auto_renew"], body["fee"]) == (
        "plus",
        "active",
        True,
        "299.00",
    )
    member = api.get(f"/api/v1/members/{card}").json()
    assert member["tier"]["code"] == "gold"
    assert member["balance"]["available"] == 100
    assert api.get(f"/api/v1/members/{card}/membership").json() == {"membership": body}

    again = join(api, card, plan="plus", trial=True)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "membership_exists"
    assert MembershipPeriod.objects.count() == 1
    entry = AuditLog.objects.get(action="membership.join")
    assert entry.reason == "API: test terminal"


def test_a_free_trial_costs_nothing_and_comes_once(api, pos, plans):
    card = pos.enrol()["card_number"]
    body = join(api, card, plan="plus", trial=True).json()
    assert (body["status"], body["fee"]) == ("trial", "0.00")
    assert api.get(f"/api/v1/members/{card}").json()["balance"]["available"] == 0
    cancelled = api.delete(f"/api/v1/members/{card}/membership").json()
    assert cancelled["auto_renew"] is False
    Membership.objects.update(status="lapsed")
    refused = join(api, card, plan="plus", trial=True)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "trial_not_available")
    assert Membership.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"plan": "old"}, 422, "plan_not_available"),
        ({"plan": "nope"}, 422, "plan_not_available"),
        ({}, 400, "invalid"),
        ({"plan": "plus", "trial": "maybe"}, 400, "invalid"),
        ({"plan": "plus", "colour": "red"}, 400, "invalid"),
    ],
)
def test_a_refused_join_changes_nothing(api, pos, plans, body, status, code):
    card = pos.enrol()["card_number"]
    response = join(api, card, **body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert not Membership.objects.exists()
    assert not AuditLog.objects.filter(action="membership.join").exists()


def test_a_blocked_card_cannot_join_and_there_is_no_membership_to_cancel(api, pos, plans):
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}/membership").json() == {"membership": None}
    cancel = api.delete(f"/api/v1/members/{card}/membership")
    assert (cancel.status_code, cancel.json()["error"]["code"]) == (422, "no_membership")
    Member.objects.filter(card_number=card).update(status="blocked")
    response = join(api, card, plan="plus")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "member_blocked")
    assert not Membership.objects.exists()

"""A free-trial campaign: the test group's members get a plan's free trial, set-based, once
(issue 21 item 3)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from campaigns.models import Campaign, CampaignChunk, CampaignRecipient
from campaigns.services import run_chunk
from loyalty.models import Membership, MembershipPeriod, MembershipPlan, Tier
from members.models import Member
from messaging.models import Outbox
from tests.campaigns.conftest import at

NOW = at("2025-03-01 12:00")


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


def test_the_test_group_gets_the_trial_its_tier_and_a_message_once(
    many_members, make_campaign, send, plus, no_drift
):
    ids = many_members(60)
    had_it, live_elsewhere, blocked = ids[0], ids[1], ids[2]
    other = MembershipPlan.objects.create(code="basic", name="Basic", fee=Decimal("99.00"))
    Membership.objects.create(
        member_id=had_it,
        plan=plus,
        status="lapsed",
        started_at=NOW - timedelta(days=90),
        period_start=NOW - timedelta(days=90),
        period_end=NOW - timedelta(days=76),
    )
    Membership.objects.create(
        member_id=live_elsewhere,
        plan=other,
        status="active",
        started_at=NOW - timedelta(days=5),
        period_start=NOW - timedelta(days=5),
        period_end=NOW + timedelta(days=25),
    )
    Member.objects.filter(pk=blocked).update(status="blocked")
    campaign = make_campaign(kind=Campaign.Kind.FREE_TRIAL, trial_plan=plus, control_percent=20)

    send(campaign)

    test = set(
        CampaignRecipient.objects.filter(campaign=campaign, group="test").values_list(
            "member_id", flat=True
        )
    )
    expected = test - {had_it, live_elsewhere, blocked}
    trials = Membership.objects.filter(plan=plus, status="trial")
    assert set(trials.values_list("member_id", flat=True)) == expected
    assert all(
        (t.started_at, t.period_end, t.auto_renew) == (NOW, NOW + timedelta(days=14), False)
        for t in trials
    )
    periods = MembershipPeriod.objects.filter(membership__in=trials)
    assert sorted(periods.values_list("kind", "fee")) == [("trial", Decimal("0.00"))] * len(
        expected
    )
    gold = set(Member.objects.filter(tier__code="gold").values_list("id", flat=True))
    assert gold == expected  # at once, not at the nightly job; nobody outside the trial
    assert Member.objects.filter(pk__in=expected, points_balance__gt=0).count() == 0  # no bonus
    joined = Outbox.objects.filter(purpose="membership_joined")
    assert set(joined.values_list("member_id", flat=True)) == expected

    # A chunk run again (a worker retry) gives nobody a second trial or message.
    for chunk in CampaignChunk.objects.filter(campaign=campaign):
        CampaignChunk.objects.filter(pk=chunk.pk).update(is_done=False, done_at=None)
        run_chunk(chunk.pk)
    assert Membership.objects.filter(plan=plus).count() == len(expected) + 1
    assert joined.count() == len(expected)
    no_drift()


def test_the_campaign_form_asks_for_a_plan_with_a_trial(client_as, stores, plus):
    from campaigns.models import Segment

    segment = Segment.objects.create(name="Все", definition={})
    no_trial = MembershipPlan.objects.create(code="basic", name="Basic", fee=Decimal("99.00"))
    form = {
        "name": "Пробный Плюс",
        "segment": segment.pk,
        "kind": "free_trial",
        "control_percent": "10",
        "points": "0",
        "points_expiry_days": "30",
        "factor": "2",
        "coupon_value": "0",
        "coupon_min_amount": "0",
        "coupon_valid_days": "30",
        "results_days": "30",
    }
    client = client_as("marketer")
    url = reverse("campaigns:campaign-create")
    refused = client.post(url, {**form, "trial_plan": no_trial.pk}, HTTP_ACCEPT_LANGUAGE="ru")
    assert refused.status_code == 422
    assert "trial_plan" in refused.context["form"].errors
    missing = client.post(url, form, HTTP_ACCEPT_LANGUAGE="ru")
    assert missing.context["form"].errors["trial_plan"] == ["Обязательно для кампании этого типа."]
    assert not Campaign.objects.exists()
    assert client.post(url, {**form, "trial_plan": plus.pk}).status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.kind, campaign.trial_plan) == ("free_trial", plus)
    page = client.get(reverse("campaigns:campaign-detail", args=[campaign.pk]))
    assert "Плюс" in page.content.decode()

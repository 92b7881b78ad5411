"""Campaign pages: who may use them, what bad input does, audit, and pinned query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, Segment
from loyalty.models import AuditLog
from tests.helpers import session_queries

# Session (unless read from Redis), user, the user's and the group's permissions, the role for
# the menu, the count and the page (with each row's related figures in the same statement).
LIST_QUERIES = 6 + session_queries()


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Everyone")


def bonus_form(segment, /, **changes):
    data = {
        "name": "Spring bonus",
        "segment": segment.pk,
        "kind": "bonus_points",
        "control_percent": "10",
        "points": "100",
        "points_expiry_days": "30",
        "factor": "2",
        "coupon_value": "0",
        "coupon_min_amount": "0",
        "coupon_valid_days": "30",
        "results_days": "30",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("persona", ["manager", "support"])
def test_staff_without_the_campaign_capability_cannot_send(
    client_as, persona, make_campaign, many_members
):
    many_members(3)
    campaign = make_campaign()

    response = client_as(persona).post(f"/campaigns/{campaign.pk}/send/", {"action": "now"})

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert not AuditLog.objects.exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(client_as, segment):
    response = client_as("anonymous").get("/campaigns/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_marketer_creates_a_campaign_and_it_is_audited(client_as, marketer, segment):
    response = client_as("marketer").post("/campaigns/new/", bonus_form(segment))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.kind, campaign.points, campaign.created_by) == ("bonus_points", 100, marketer)
    entry = AuditLog.objects.get(action="campaign.create")
    assert entry.actor == marketer
    assert entry.after["points"] == 100


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"points": "0"}, "points"),
        ({"control_percent": "95"}, "control_percent"),
        ({"points_expiry_days": "0"}, "points_expiry_days"),
        ({"kind": "multiplier", "factor": "1"}, "factor"),
        (
            {
                "kind": "multiplier",
                "starts_at": "2030-03-09T00:00",
                "ends_at": "2030-03-08T00:00",
            },
            "ends_at",
        ),
        (
            {"kind": "multiplier", "starts_at": "2020-03-08T00:00", "ends_at": "2020-03-09T00:00"},
            "ends_at",
        ),
        ({"kind": "coupon", "coupon_kind": "percent", "coupon_value": "150"}, "coupon_value"),
        ({"kind": "coupon", "coupon_kind": "free_product"}, "coupon_sku"),
        ({"kind": "message"}, "message_ru"),
        ({"subject_en": "Hello"}, "message_en"),
        ({"segment": "999999"}, "segment"),
    ],
)
def test_bad_campaign_input_is_shown_on_the_form_and_nothing_is_saved(
    client_as, segment, changes, field
):
    response = client_as("marketer").post("/campaigns/new/", bonus_form(segment, **changes))

    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert Campaign.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_a_sent_campaign_can_no_longer_be_edited(client_as, make_campaign, send, many_members):
    many_members(2)
    campaign = make_campaign()
    send(campaign)

    response = client_as("marketer").post(
        f"/campaigns/{campaign.pk}/edit/", bonus_form(campaign.segment, name="Changed")
    )

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Spring"


def test_scheduling_in_the_past_is_refused_on_the_page(client_as, make_campaign):
    campaign = make_campaign()
    past = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    response = client_as("marketer").post(
        f"/campaigns/{campaign.pk}/send/", {"action": "schedule", "scheduled_at": past}
    )

    assert response.status_code == 422
    assert "scheduled_at" in response.context["schedule_form"].errors
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("draft", None)


def test_scheduling_a_campaign_audits_when_it_will_go(client_as, marketer, make_campaign):
    campaign = make_campaign()
    when = timezone.localtime(timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)

    client_as("marketer").post(
        f"/campaigns/{campaign.pk}/send/",
        {"action": "schedule", "scheduled_at": when.strftime("%Y-%m-%dT%H:%M")},
    )

    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", when)
    entry = AuditLog.objects.get(action="campaign.schedule")
    assert (entry.actor, entry.before["status"], entry.after["scheduled_at"]) == (
        marketer,
        "draft",
        when.isoformat(),
    )


def test_a_multiplier_whose_window_has_ended_cannot_be_sent(client_as, make_campaign):
    campaign = make_campaign(
        kind="multiplier",
        starts_at=timezone.now() - timedelta(days=3),
        ends_at=timezone.now() - timedelta(days=1),
    )

    client = client_as("marketer")
    client.cookies["language"] = "en"
    response = client.post(f"/campaigns/{campaign.pk}/send/", {"action": "now"})

    assert response.status_code == 422
    assert "window has already ended" in response.text
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_the_progress_fragment_shows_the_share_done(client_as, make_campaign):
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", total=2500, done=1000)

    response = client_as("marketer").get(
        f"/campaigns/{campaign.pk}/?poll=1", headers={"HX-Request": "true"}
    )

    assert 'data-testid="campaign-percent">40%' in response.text
    assert "HX-Refresh" not in response


def test_the_progress_fragment_reloads_the_page_when_the_send_ends(client_as, make_campaign):
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="done", total=10, done=10)

    response = client_as("marketer").get(
        f"/campaigns/{campaign.pk}/?poll=1", headers={"HX-Request": "true"}
    )

    assert response["HX-Refresh"] == "true"
    assert 'data-testid="campaign-percent">100%' in response.text


def test_the_member_page_lists_the_campaigns_that_targeted_the_member(
    client_as, enrol, make_campaign, send
):
    member = enrol()
    campaign = make_campaign(name="Весна", control_percent=0)
    send(campaign)

    response = client_as("support").get(f"/members/{member.card_number}/")

    assert "Весна" in response.text
    assert f"/campaigns/{campaign.pk}/" not in response.text  # support cannot open campaigns
    assert CampaignRecipient.objects.get(member=member).group == "test"


def test_the_campaign_list_costs_the_same_queries_for_twice_the_rows(
    client_as, make_campaign, django_assert_num_queries
):
    client = client_as("marketer")
    for index in range(3):
        make_campaign(name=f"C{index}")
    client.get("/campaigns/")
    with django_assert_num_queries(LIST_QUERIES):
        assert client.get("/campaigns/").status_code == 200
    for index in range(3, 6):
        make_campaign(name=f"C{index}")
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/campaigns/")
    assert response.text.count('<tr><td><a href="/campaigns/') == 6


def test_send_now_with_the_broker_down_leaves_the_campaign_for_send_campaigns(
    transactional_db, client_as, make_campaign, broker_down
):
    from campaigns.tasks import send_campaigns

    campaign = make_campaign()

    response = client_as("marketer").post(f"/campaigns/{campaign.pk}/send/", {"action": "now"})

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"  # nothing lost: the minute's job starts it
    come_back = broker_down
    come_back()
    assert send_campaigns(as_of=campaign.scheduled_at) == 1

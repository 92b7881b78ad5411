"""Win-back campaigns: every day, the segment's members whose last purchase was exactly N days
before get the offer (once per lapse), with a control group, and the results of all the daily
runs together."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, CampaignRecipient, CampaignVariant
from campaigns.queries import campaign_results
from campaigns.services import cancel_campaign
from campaigns.tasks import win_back
from loyalty.models import LedgerEntry
from tests.campaigns.conftest import at
from tests.campaigns.test_pages import bonus_form

STARTED = at("2025-03-01 12:00")


@pytest.fixture
def running(make_campaign, send):
    """A 30-day win-back of 200 bonus points, no control group unless asked, started 1 March."""

    def make(**fields):
        values = {
            "kind": Campaign.Kind.BONUS_POINTS,
            "points": 200,
            "lapsed_days": 30,
            "control_percent": 0,
        }
        campaign = make_campaign(**{**values, **fields})
        send(campaign, now=STARTED)
        return campaign

    return make


def targeted(run_id):
    return set(
        CampaignRecipient.objects.filter(campaign_id=run_id).values_list("member_id", flat=True)
    )


def runs(win_back_campaign):
    return list(win_back_campaign.runs.order_by("run_on"))


def test_starting_a_win_back_sends_nothing_until_its_daily_run(running):
    campaign = running()

    assert campaign.status == "running"
    assert not CampaignRecipient.objects.exists()
    assert campaign.is_cancellable and not campaign.is_editable


def test_the_days_run_reaches_members_whose_last_purchase_was_exactly_n_days_before(
    enrol, buy, running, eager_celery
):
    exactly, sooner, later, came_back = (enrol() for _ in range(4))
    buy(exactly, "500.00", "2025-02-18 09:00")  # 30 days before 20 March
    buy(sooner, "500.00", "2025-02-19 09:00")
    buy(later, "500.00", "2025-02-17 09:00")
    buy(came_back, "500.00", "2025-02-18 11:00")
    buy(came_back, "500.00", "2025-03-05 11:00")
    campaign = running()

    assert win_back(as_of=at("2025-03-20 10:00")) == 1

    (run,) = runs(campaign)
    assert (run.run_on.isoformat(), run.status, run.kind, run.points) == (
        "2025-03-20",
        "done",
        "bonus_points",
        200,
    )
    assert targeted(run.pk) == {exactly.pk}
    assert LedgerEntry.objects.filter(kind="bonus", member=exactly, points=200).count() == 1


def test_a_member_gets_it_once_per_lapse(enrol, buy, running, eager_celery):
    member = enrol()
    buy(member, "500.00", "2025-02-18 09:00")
    campaign = running()

    for day in ("2025-03-20", "2025-03-20", "2025-03-21"):
        call_command("runjob", "win_back", "--as-of", f"{day}T10:00:00+03:00", stdout=StringIO())
    buy(member, "300.00", "2025-03-25 09:00")  # came back, then lapsed again
    win_back(as_of=at("2025-04-24 10:00"))

    assert [(run.run_on.isoformat(), targeted(run.pk)) for run in runs(campaign)] == [
        ("2025-03-20", {member.pk}),
        ("2025-03-21", set()),
        ("2025-04-24", {member.pk}),
    ]
    assert LedgerEntry.objects.filter(kind="bonus", member=member).count() == 2


def test_a_cancelled_win_back_runs_no_more(enrol, buy, running, marketer, eager_celery):
    buy(enrol(), "500.00", "2025-02-18 09:00")
    campaign = running()
    cancel_campaign(campaign_id=campaign.pk, staff=marketer, now=at("2025-03-19 10:00"))

    assert win_back(as_of=at("2025-03-20 10:00")) == 0
    assert not campaign.runs.exists()


def test_the_results_count_every_run_in_its_own_window(enrol, buy, running, eager_celery):
    first, second = enrol(), enrol()
    buy(first, "500.00", "2025-02-18 09:00")
    buy(second, "500.00", "2025-02-19 09:00")
    campaign = running()
    win_back(as_of=at("2025-03-20 10:00"))  # first lapsed
    win_back(as_of=at("2025-03-21 10:00"))  # second lapsed
    buy(first, "300.00", "2025-04-01 09:00")  # in the first run's 30 days
    buy(second, "200.00", "2025-04-19 09:00")  # in the second run's 30 days
    buy(first, "900.00", "2025-04-20 09:00")  # after the first run's window

    results = campaign_results(campaign)

    test = results["test"]
    assert (test["members"], test["buyers"], test["purchases"]) == (2, 2, 2)
    assert test["revenue"] == Decimal("500.00")
    # Both runs gave 200 points: their cost together, at 1 RUB a point.
    assert results["variants"][0]["cost"].points_cost == Decimal("400.00")


def test_a_win_back_has_a_control_group_in_each_run(enrol, buy, running, eager_celery):
    members = [enrol() for _ in range(20)]
    for member in members:
        buy(member, "500.00", "2025-02-18 09:00")
    campaign = running(control_percent=50)

    win_back(as_of=at("2025-03-20 10:00"))

    (run,) = runs(campaign)
    groups = dict(CampaignRecipient.objects.filter(campaign=run).values_list("member_id", "group"))
    assert set(groups) == {member.pk for member in members}
    assert set(groups.values()) == {"test", "control"}
    given = set(LedgerEntry.objects.filter(kind="bonus").values_list("member_id", flat=True))
    assert given == {pk for pk, group in groups.items() if group == "test"}
    assert campaign_results(campaign)["control"]["members"] == list(groups.values()).count(
        "control"
    )


def test_a_win_back_cannot_be_a_multiplier(client_as, make_campaign):
    segment = make_campaign().segment

    response = client_as("marketer").post(
        "/campaigns/new/",
        bonus_form(
            segment,
            kind="multiplier",
            lapsed_days="30",
            starts_at="2030-03-08T00:00",
            ends_at="2030-03-09T00:00",
        ),
    )

    assert response.status_code == 422
    assert "lapsed_days" in response.context["form"].errors


def test_the_campaign_list_shows_the_win_back_not_its_runs(
    client_as, enrol, buy, running, eager_celery
):
    buy(enrol(), "500.00", "2025-02-18 09:00")
    campaign = running(name="Come back")
    win_back(as_of=at("2025-03-20 10:00"))

    listing = client_as("marketer").get("/campaigns/")
    page = client_as("marketer").get(f"/campaigns/{campaign.pk}/")

    assert [c.pk for c in listing.context["page"].object_list] == [campaign.pk]
    assert 'data-testid="win-back"' in page.text
    assert "1 запуск" in page.text


def test_each_run_carries_the_win_backs_variants(enrol, buy, running, eager_celery):
    members = [enrol() for _ in range(20)]
    for member in members:
        buy(member, "500.00", "2025-02-18 09:00")
    campaign = running(name="Come back")
    CampaignVariant.objects.create(campaign=campaign, number=2, share=50, points=500)

    win_back(as_of=at("2025-03-20 10:00"))

    (run,) = runs(campaign)
    assert list(run.variants.values_list("number", "share", "points")) == [(2, 50, 500)]
    given = dict(LedgerEntry.objects.filter(kind="bonus").values_list("member_id", "points"))
    variants = dict(
        CampaignRecipient.objects.filter(campaign=run).values_list("member_id", "variant")
    )
    assert given == {pk: {1: 200, 2: 500}[variant] for pk, variant in variants.items()}
    assert set(variants.values()) == {1, 2}

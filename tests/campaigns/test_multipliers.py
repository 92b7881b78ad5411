"""Earn-multiplier campaigns in the points engine: doubled points for the test group at covered
stores within the window, and nothing else changes."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign
from campaigns.services import cancel_campaign, in_control_group
from loyalty.engine.purchases import quote_purchase
from tests.campaigns.conftest import at


@pytest.fixture
def double_points(make_campaign, send, stores):
    """A x2 campaign for the weekend of 8-9 March 2025, sent to everyone with no control group
    (or ``control_percent``), at ``stores`` (codes; none: every store)."""

    def make(*, factor="2", stores_=(), control_percent=0, definition=None):
        campaign = make_campaign(
            definition,
            kind=Campaign.Kind.MULTIPLIER,
            factor=Decimal(factor),
            starts_at=at("2025-03-08 00:00"),
            ends_at=at("2025-03-10 00:00"),
            control_percent=control_percent,
            message_ru="",
        )
        campaign.stores.set([stores[code] for code in stores_])
        send(campaign, now=at("2025-03-07 12:00"))
        return campaign

    return make


def test_a_test_group_member_earns_double_at_the_weekend(enrol, buy, double_points):
    member = enrol()
    double_points()

    assert buy(member, "1000.00", "2025-03-08 10:00")["earned_points"] == 60  # 3% x 2


def test_the_window_holds_its_start_but_not_its_end(enrol, buy, double_points):
    member = enrol()
    double_points()

    assert buy(member, "1000.00", "2025-03-07 23:59")["earned_points"] == 30
    assert buy(member, "1000.00", "2025-03-08 00:00")["earned_points"] == 60
    assert buy(member, "1000.00", "2025-03-09 23:59")["earned_points"] == 60
    assert buy(member, "1000.00", "2025-03-10 00:00")["earned_points"] == 30


def test_the_control_group_earns_the_usual_points(enrol, buy, double_points):
    members = [enrol() for _ in range(12)]
    campaign = double_points(control_percent=50)
    control = next(m for m in members if in_control_group(campaign.pk, m.pk, 50))
    test = next(m for m in members if not in_control_group(campaign.pk, m.pk, 50))

    assert buy(control, "1000.00", "2025-03-08 10:00")["earned_points"] == 30
    assert buy(test, "1000.00", "2025-03-08 10:00")["earned_points"] == 60


def test_a_member_outside_the_segment_earns_the_usual_points(enrol, buy, double_points):
    outside = enrol(consent=False)
    enrol(consent=True)
    double_points(definition={"consent": "yes"})

    assert buy(outside, "1000.00", "2025-03-08 10:00")["earned_points"] == 30


def test_only_the_campaigns_stores_double_points(enrol, buy, double_points):
    member = enrol()
    double_points(stores_=["MSK-01"])

    assert buy(member, "1000.00", "2025-03-08 10:00", store="MSK-01")["earned_points"] == 60
    assert buy(member, "1000.00", "2025-03-08 11:00", store="SPB-01")["earned_points"] == 30


def test_two_running_multipliers_multiply(enrol, buy, double_points):
    member = enrol()
    double_points(factor="2")
    double_points(factor="1.5")

    assert buy(member, "1000.00", "2025-03-08 10:00")["earned_points"] == 90  # 3% x 2 x 1.5


def test_earned_points_are_rounded_down_after_the_multiplier(enrol, buy, double_points):
    member = enrol()
    double_points(factor="1.5")

    # 333.33 x 0.03 x 1.5 = 14.99985
    assert buy(member, "333.33", "2025-03-08 10:00")["earned_points"] == 14


def test_the_purchase_that_crosses_a_tier_earns_double_the_old_rate(enrol, buy, double_points):
    member = enrol()
    buy(member, "14000.00", "2025-03-01 10:00")
    double_points()

    body = buy(member, "2000.00", "2025-03-08 10:00")  # 16,000: Silver from now on

    assert body["earned_points"] == 120  # 2,000 x 3% (Bronze) x 2, not 5%
    assert body["tier"]["code"] == "silver"
    assert buy(member, "1000.00", "2025-03-08 11:00")["earned_points"] == 100  # 5% x 2


def test_points_spent_are_not_multiplied(enrol, buy, double_points):
    member = enrol()
    buy(member, "1000.00", "2025-03-01 10:00")  # 30 points
    double_points()

    body = buy(member, "1000.00", "2025-03-08 10:00", redeem=30)

    assert body["redeemed_points"] == 30
    assert body["earned_points"] == 58  # (1,000 - 30) x 3% x 2 = 58.2


def test_the_quote_shows_the_multiplied_points(enrol, double_points, stores):
    member = enrol()
    double_points()

    quote = quote_purchase(
        card_number=member.card_number,
        amount=Decimal("1000.00"),
        now=at("2025-03-08 10:00"),
        store=stores["MSK-01"],
    )

    assert quote.earn_points == 60


def test_a_cancelled_multiplier_stops_doubling(
    enrol, buy, double_points, marketer, django_capture_on_commit_callbacks
):
    member = enrol()
    campaign = double_points()
    buy(member, "1000.00", "2025-03-08 09:00")  # the multipliers are in this process's copy

    with django_capture_on_commit_callbacks(execute=True):
        cancel_campaign(campaign_id=campaign.pk, staff=marketer, now=at("2025-03-08 09:30"))

    assert buy(member, "1000.00", "2025-03-08 10:00")["earned_points"] == 30


def test_a_multiplier_at_another_store_adds_no_statement_to_a_purchase(enrol, buy, double_points):
    member = enrol()
    double_points(stores_=["SPB-01"])
    buy(member, "100.00", "2025-03-08 09:00")  # warms the per-process copies

    with CaptureQueriesContext(connection) as covered_elsewhere:
        buy(member, "100.00", "2025-03-08 10:00", store="MSK-01")
    with CaptureQueriesContext(connection) as covered_here:
        buy(member, "100.00", "2025-03-08 11:00", store="SPB-01")

    recipients = [
        q["sql"] for q in covered_here.captured_queries if "campaigns_campaignrecipient" in q["sql"]
    ]
    assert not any(
        "campaigns_" in q["sql"] for q in covered_elsewhere.captured_queries
    )  # nothing about campaigns at a store no multiplier covers
    assert len(recipients) == 1  # one indexed look-up where one does
    assert len(covered_here.captured_queries) == len(covered_elsewhere.captured_queries) + 1

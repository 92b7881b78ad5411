"""Campaign results against the control group, with hand-computed statistics, and the CSV."""

import csv
import io
import math
from decimal import Decimal

import pytest
from scipy import stats

from campaigns.models import CampaignRecipient
from campaigns.queries import campaign_results, two_proportions, welch
from tests.campaigns.conftest import at


def test_two_proportions_by_hand():
    # 30 of 100 against 20 of 100: difference 0.1; unpooled SE sqrt(.3*.7/100 + .2*.8/100)
    # = 0.0608276, so the 95% interval is 0.1 -/+ 1.959964 * 0.0608276; pooled share 0.25,
    # SE sqrt(.25*.75*(2/100)) = 0.0612372, z = 1.632993, two-sided p = 0.102470.
    stat = two_proportions(30, 100, 20, 100)

    assert stat["diff"] == pytest.approx(0.1, abs=1e-9)
    assert stat["low"] == pytest.approx(-0.019220, abs=1e-6)
    assert stat["high"] == pytest.approx(0.219220, abs=1e-6)
    assert stat["p_value"] == pytest.approx(0.102470, abs=1e-6)


def test_welch_by_hand_and_as_scipy_gives_it():
    # Test [1000, 500, 500, 0]: mean 500, variance 500,000/3; control [400, 0, 0, 0]: mean
    # 100, variance 40,000. SE sqrt(166,666.67/4 + 40,000/4) = 227.3030, difference 400,
    # t = 1.759765 on 4.361573 degrees of freedom (Welch-Satterthwaite), p = 0.147289.
    stat = welch(2000.0, 1_500_000.0, 4, 400.0, 160_000.0, 4)

    assert stat["diff"] == pytest.approx(400.0, abs=1e-9)
    assert stat["t"] == pytest.approx(1.759765, abs=1e-6)
    assert stat["df"] == pytest.approx(4.361573, abs=1e-6)
    test, control = [1000, 500, 500, 0], [400, 0, 0, 0]
    reference = stats.ttest_ind(test, control, equal_var=False)
    assert stat["t"] == pytest.approx(reference.statistic, rel=1e-12)
    assert stat["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    low, high = reference.confidence_interval(0.95)
    assert (stat["low"], stat["high"]) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )


def test_two_proportions_as_scipy_gives_it():
    """The pooled z statistic's two-sided p-value from scipy's normal distribution."""
    stat = two_proportions(130, 1000, 100, 1000)
    pooled = 230 / 2000
    z = (0.13 - 0.10) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert stat["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)


def test_no_statistics_for_an_empty_group():
    assert two_proportions(0, 0, 3, 10) is None
    assert welch(0.0, 0.0, 1, 10.0, 100.0, 5) is None


@pytest.fixture
def sent_with_purchases(enrol, buy, make_campaign, send):
    """Eight members, the last four in the control group; in the 30 days after the send, three
    test members buy (1,000; 500; 500, the last in two receipts of 250) and one control member
    buys 400. A purchase before the send and one after the window do not count."""
    members = [enrol() for _ in range(8)]
    control = {member.pk for member in members[4:]}
    campaign = make_campaign(control_percent=50)
    send(campaign, now=at("2025-03-01 12:00"))
    # The groups the hash drew, set by hand so the figures below are known.
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    recipients.filter(member_id__in=control).update(
        group=CampaignRecipient.Group.CONTROL, variant=0
    )
    recipients.exclude(member_id__in=control).update(group=CampaignRecipient.Group.TEST, variant=1)
    buy(members[0], "1000.00", "2025-03-02 10:00")
    buy(members[1], "500.00", "2025-03-05 10:00")
    buy(members[2], "250.00", "2025-03-06 10:00")
    buy(members[2], "250.00", "2025-03-07 10:00")
    buy(members[4], "400.00", "2025-03-10 10:00")
    buy(members[5], "900.00", "2025-02-20 10:00")  # before the send
    buy(members[6], "900.00", "2025-04-01 10:00")  # after the 30-day window
    campaign.refresh_from_db()
    return campaign


def test_results_compare_the_test_group_with_its_control(sent_with_purchases):
    results = campaign_results(sent_with_purchases)

    test, control = results["test"], results["control"]
    assert (test["members"], test["buyers"], test["purchases"]) == (4, 3, 4)
    assert (control["members"], control["buyers"], control["purchases"]) == (4, 1, 1)
    assert test["revenue"] == Decimal("2000.00")
    assert test["revenue_per_member"] == Decimal("500.00")
    assert test["average_check"] == Decimal("500.00")
    assert control["revenue_per_member"] == Decimal("100.00")
    assert control["average_check"] == Decimal("400.00")
    # 3/4 against 1/4: difference 0.5, SE sqrt(2 * .75*.25/4) = 0.306186, pooled SE 0.353553,
    # z = 1.414214, p = 0.157299.
    assert results["conversion"]["diff"] == pytest.approx(0.5, abs=1e-9)
    assert results["conversion"]["low"] == pytest.approx(-0.100114, abs=1e-6)
    assert results["conversion"]["high"] == pytest.approx(1.100114, abs=1e-6)
    assert results["conversion"]["p_value"] == pytest.approx(0.157299, abs=1e-6)
    assert results["conversion"]["significant"] is False
    # Revenue per member: the Welch figures of test_welch_by_hand_and_as_scipy_gives_it.
    assert results["revenue"]["diff"] == pytest.approx(400.0, abs=1e-6)
    assert results["revenue"]["p_value"] == pytest.approx(0.147289, abs=1e-6)


def test_the_results_csv_has_a_row_per_group_and_the_differences(client_as, sent_with_purchases):
    response = client_as("marketer").get(f"/campaigns/{sent_with_purchases.pk}/results.csv")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["group", "variant", "members", "buyers", "conversion"]
    test, control = rows[1], rows[2]
    assert test[:10] == ["test", "1", "4", "3", "0.7500", "2000.00", "500.00", "4", "500.00", "0"]
    # The differences: conversion, then revenue per member (difference, CI, p-value).
    assert test[10:18] == [
        "0.5000", "-0.1001", "1.1001", "0.1573",
        "400.0000", "-210.9873", "1010.9873", "0.1473",
    ]  # fmt: skip
    # A message campaign whose messages are still in the outbox has cost nothing yet: its ROI
    # cannot be worked out; the extra revenue is (500 - 100) x 4 members, at 30% margin 480.
    assert test[18:27] == ["0", "0.00", "0.00", "0", "0.00", "0.00", "1600.00", "480.00", ""]
    assert control[:10] == [
        "control",
        "0",
        "4",
        "1",
        "0.2500",
        "400.00",
        "100.00",
        "1",
        "400.00",
        "0",
    ]
    # No survey at the campaign's end was asked for: no NPS columns either.
    assert control[10:] == [""] * 21
    assert test[27:] == [""] * 4
    assert len(rows) == 3


def test_the_campaign_page_shows_the_results_table(client_as, sent_with_purchases):
    response = client_as("marketer").get(f"/campaigns/{sent_with_purchases.pk}/")

    assert response.status_code == 200
    assert 'data-testid="results"' in response.text
    # The default language is Russian: a decimal comma.
    assert "75,0%" in response.text
    assert "25,0%" in response.text
    assert "500,00" in response.text

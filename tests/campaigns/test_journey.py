"""A marketer's journey in a real Chromium, in English and in Russian: build a segment and watch
its live count, create a bonus-points campaign, send it, see the progress reach 100% and the
results table; every page checked with axe-core."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignVariant, Segment
from campaigns.services import create_run
from loyalty.models import LedgerEntry
from tests.browser.test_journeys import sign_in
from tests.campaigns.conftest import at
from tests.helpers import assert_accessible

pytestmark = pytest.mark.browser


@pytest.fixture(params=["en", "ru"])
def language(request):
    return request.param


@pytest.fixture
def browser_locale(language):
    return "ru-RU" if language == "ru" else "en-US"


def test_marketer_builds_a_segment_and_sends_a_bonus_campaign(
    page, marketer, enrol, stores, language, eager_celery
):
    for _ in range(3):
        enrol(store="MSK-01")
    for _ in range(2):
        enrol(store="SPB-01")
    sign_in(page, "marketer", language)

    page.goto("/campaigns/segments/new/")
    count = page.get_by_test_id("segment-count")
    expect(count).to_contain_text("5")
    assert_accessible(page)
    page.locator(f"input[name=enrolled_stores][value='{stores['MSK-01'].pk}']").check()
    expect(count).to_contain_text("3")
    page.locator("#id_name").fill("Moscow")
    page.locator("#segment-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/campaigns/segments/$"))
    segment = Segment.objects.get()
    assert segment.definition == {"enrolled_stores": [stores["MSK-01"].pk]}
    assert_accessible(page)

    page.goto(f"/campaigns/new/?segment={segment.pk}")
    page.locator("#id_name").fill("Spring bonus")
    page.locator("input[name=kind][value=bonus_points]").check()
    page.locator("#id_points").fill("50")
    page.locator("#id_control_percent").fill("0")
    assert_accessible(page)
    page.locator("#campaign-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/$"))
    assert_accessible(page)

    page.get_by_test_id("send-now").click()
    expect(page.get_by_test_id("campaign-percent")).to_have_text("100%")
    expect(page.get_by_test_id("results")).to_be_visible()
    expect(page.get_by_test_id("results").locator("tbody tr").first).to_contain_text("3")
    assert_accessible(page)
    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.done, campaign.total) == ("done", 3, 3)
    assert LedgerEntry.objects.filter(kind="bonus", points=50).count() == 3


def test_the_results_of_a_campaign_with_variants_chart_each_group(
    page, marketer, many_members, make_campaign, send, language
):
    many_members(60)
    campaign = make_campaign(
        kind=Campaign.Kind.BONUS_POINTS, points=100, control_percent=20, survey_at_end=True
    )
    CampaignVariant.objects.create(campaign=campaign, number=2, share=40, points=300)
    send(campaign)
    sign_in(page, "marketer", language)

    page.goto(f"/campaigns/{campaign.pk}/")

    expect(page.get_by_test_id("costs").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("results").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("campaign-nps").locator("tbody tr")).to_have_count(3)
    for chart in ("campaign-conversion", "campaign-revenue"):
        page.wait_for_function(f"() => window.Chart && Chart.getChart('{chart}') !== undefined")
        labels = page.evaluate(f"() => Chart.getChart('{chart}').data.labels")
        control = "Контрольная" if language == "ru" else "Control"
        variant = "Вариант" if language == "ru" else "Variant"
        assert labels == [f"{variant} 1", f"{variant} 2", control]
    assert_accessible(page)


def test_a_win_back_page_adds_up_its_runs(
    page, marketer, enrol, buy, make_campaign, send, language
):
    member = enrol()
    buy(member, "500.00", "2025-02-18 09:00")
    campaign = make_campaign(
        kind=Campaign.Kind.BONUS_POINTS, points=200, lapsed_days=30, control_percent=0
    )
    send(campaign, now=at("2025-03-01 12:00"))
    run_id = create_run(win_back_id=campaign.pk, now=at("2025-03-20 10:00"))
    send(Campaign.objects.get(pk=run_id), now=at("2025-03-20 10:00"))
    sign_in(page, "marketer", language)

    page.goto(f"/campaigns/{campaign.pk}/")

    expect(page.get_by_test_id("win-back")).to_contain_text("30")
    expect(page.get_by_test_id("results").locator("tbody tr").first).to_contain_text("1")
    assert_accessible(page)

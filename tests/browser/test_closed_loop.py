"""The closed loop in Chromium: a detractor answers on the public page (on a phone), the case
reaches the support queue, and an agent takes and resolves it with compensation."""

import re

import pytest
from playwright.sync_api import expect

from loyalty.management.commands.seed_demo import DEMO_PASSWORD
from members.services import enrol_member
from surveys.defaults import install_default_surveys
from surveys.models import Complaint, ComplaintCategory, Survey
from surveys.services import create_invitation
from tests.helpers import assert_accessible

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_locale():
    return "en-US"


def test_detractor_answer_becomes_a_resolved_case_with_compensation(
    browser, live_server, page, support, stores
):
    install_default_surveys(Survey, ComplaintCategory)
    member = enrol_member(
        phone="+79126660000",
        first_name="Ольга",
        marketing_consent=True,
        store=stores["MSK-01"],
        language="ru",
    )
    from django.utils import timezone

    _invitation, token = create_invitation(
        survey=Survey.objects.get(code="nps"), member=member, now=timezone.now()
    )

    phone = browser.new_context(
        base_url=live_server.url,
        locale="ru-RU",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
    )
    public = phone.new_page()
    public.goto(f"/s/{token}/")
    expect(public.locator("html")).to_have_attribute("lang", "ru")
    assert_accessible(public)
    public.locator("label[for=score-2]").click()
    expect(public.locator("#follow-up")).to_have_text("Что нам исправить в первую очередь?")
    public.locator("#id_comment").fill("Кассир был груб")
    public.locator("form button[type=submit]").click()
    expect(public.locator("h1")).to_have_text("Спасибо!")
    public.goto(f"/s/{token}/")
    expect(public.locator("form")).to_have_count(0)  # the link works once
    phone.close()

    case = Complaint.objects.get()
    page.goto("/login/")
    page.locator("input[name=username]").fill("support")
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.goto("/complaints/")
    row = page.locator(f"#case-{case.pk}")
    expect(row).to_contain_text("Кассир был груб")
    assert_accessible(page)
    row.get_by_role("button", name="Take").click()
    row = page.locator(f"#case-{case.pk}")
    expect(row).to_contain_text("support")
    row.get_by_text("Resolve").first.click()
    row.locator("textarea[name=resolution]").fill("Apologised; 200 points")
    row.locator("input[name=points]").fill("200")
    row.locator("button[type=submit]", has_text="Resolve").click()
    expect(page).to_have_url(re.compile(r"/complaints/$"))
    expect(page.locator(f"#case-{case.pk}")).to_have_count(0)  # resolved: out of the open queue
    case.refresh_from_db()
    member.refresh_from_db()
    assert case.status == "resolved"
    assert case.compensation_points == 200
    assert member.points_balance == 200
    page.goto(f"/members/{member.card_number}/")
    expect(page.get_by_test_id("available")).to_have_text("200")

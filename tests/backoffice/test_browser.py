"""In a real Chromium, in English and in Russian: support opens a member's page, reads the
consent history, erases the member's personal data with the keyboard only (the card number
typed to confirm), and axe-core finds no serious accessibility problem before or after."""

import pytest
from playwright.sync_api import expect

from loyalty.management.commands.seed_demo import DEMO_PASSWORD
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey
from tests.helpers import assert_accessible
from tests.stories import member_with_a_story

pytestmark = pytest.mark.browser

LANGUAGES = {"en": "en-US", "ru": "ru-RU"}
ERASED = {"en": "Personal data erased on", "ru": "Персональные данные удалены"}


@pytest.fixture
def browser_locale(language):
    return LANGUAGES[language]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_support_erases_a_members_personal_data_with_the_keyboard(page, stores, support, language):
    # A live-server test may follow one that flushed the migrations' surveys.
    install_default_surveys(Survey, ComplaintCategory)
    member = member_with_a_story(stores, support)
    errors = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            # the refused confirmation is a 422 by design; the browser logs every 4xx
            and "status of 422" not in message.text
            and errors.append(message.text)
        ),
    )
    page.goto("/login/")
    page.locator("input[name=username]").fill("support")
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("main").locator("button[type=submit]").click()
    expect(page.get_by_test_id("main-nav")).to_be_visible()

    page.goto(f"/members/{member.card_number}/")
    consents = page.locator("#consents tbody tr")
    expect(consents).to_have_count(1)
    expect(consents.first).to_contain_text("Я согласна получать предложения.")
    expect(page.get_by_test_id("personal-data-download")).to_be_visible()
    assert_accessible(page)

    summary = page.locator("#erase summary")
    summary.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the reason
    page.keyboard.type("Запрос клиента")
    page.keyboard.press("Tab")  # the confirmation
    page.keyboard.type("0000000000000")
    page.keyboard.press("Enter")
    expect(page.locator("#erase ul.errorlist")).to_be_visible()
    page.locator("#erase input[name=confirm]").fill(member.card_number)
    page.locator("#erase input[name=confirm]").press("Enter")

    expect(page.get_by_test_id("erased")).to_contain_text(ERASED[language])
    expect(page.locator("h1")).not_to_contain_text("Анна")
    expect(page.locator("#consents tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("member-status")).not_to_have_text("")
    assert_accessible(page)
    assert errors == []

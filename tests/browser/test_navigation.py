"""In a real Chromium, each role signs in through the login page and sees its own navigation,
in English and in Russian; the login and home pages have no moderate, serious or critical
accessibility problems."""

import re

import pytest
from playwright.sync_api import expect

from loyalty.management.commands.seed_demo import DEMO_PASSWORD
from tests.helpers import accessibility_violations, assert_accessible

pytestmark = pytest.mark.browser

# The header's words in each language.
WORDS = {
    "en": {"sign_in": "Sign in", "sign_out": "Sign out", "switch_to": "English"},
    "ru": {"sign_in": "Войти", "sign_out": "Выйти", "switch_to": "Русский"},
}

# Navigation entries: (English, Russian). None: that language's label is not pinned here.
HOME = ("Home", "Главная")
MEMBERS = ("Members", "Участники")
PURCHASES = ("Purchases", None)
COMPLAINTS = ("Complaints", "Жалобы")
ANALYTICS = ("Analytics", "Аналитика")
CAMPAIGNS = ("Campaigns", "Кампании")
NPS = ("NPS", "NPS")
PARTNERS = ("Partners", None)
JOBS = ("Jobs", None)
AUDIT_LOG = ("Audit log", None)
PROGRAM = ("Program", None)
STORES = ("Stores", "Магазины")
STAFF = ("Staff", None)
API_KEYS = ("API keys", "API-ключи")
WEBHOOKS = ("Webhooks", "Вебхуки")
IMPORT_EXPORT = ("Import and export", None)
DJANGO_ADMIN = ("Django admin", None)

# What each role sees in the main navigation, in order (capabilities from loyalty.roles).
NAVIGATION = {
    "admin": [
        HOME,
        MEMBERS,
        PURCHASES,
        COMPLAINTS,
        CAMPAIGNS,
        ANALYTICS,
        NPS,
        PARTNERS,
        AUDIT_LOG,
        PROGRAM,
        STORES,
        STAFF,
        API_KEYS,
        WEBHOOKS,
        IMPORT_EXPORT,
        JOBS,
        DJANGO_ADMIN,
    ],
    "manager": [HOME, MEMBERS, PURCHASES, ANALYTICS, NPS],
    "support": [HOME, MEMBERS, PURCHASES, COMPLAINTS, AUDIT_LOG],
    "marketer": [HOME, MEMBERS, PURCHASES, CAMPAIGNS, ANALYTICS, NPS],
}
LANGUAGES = ("en", "ru")


@pytest.fixture
def browser_locale(language):
    """Start the browser in the other language, so that the test must use the switch."""
    return "ru-RU" if language == "en" else "en-US"


def switch_language(page, language):
    page.get_by_role("button", name=WORDS[language]["switch_to"]).click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def sign_in(page, username, language):
    # By name: the Russian labels are the catalog's to choose.
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name=WORDS[language]["sign_in"]).click()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("persona", sorted(NAVIGATION))
def test_each_role_sees_its_navigation_in_each_language(page, persona_user, persona, language):
    persona_user(persona)
    page.goto("/login/")
    other = "ru" if language == "en" else "en"
    expect(page.locator("html")).to_have_attribute("lang", other)

    switch_language(page, language)
    sign_in(page, persona, language)

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("user-name")).to_have_text(persona)
    nav = page.get_by_test_id("main-nav").get_by_role("link")
    labels = [entry[LANGUAGES.index(language)] for entry in NAVIGATION[persona]]
    expect(nav).to_have_count(len(labels))
    for link, label in zip(nav.all(), labels, strict=True):
        if label is not None:
            expect(link).to_have_text(label)

    page.get_by_role("button", name=WORDS[language]["sign_out"]).click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(
        page.locator("main").get_by_role("button", name=WORDS[language]["sign_in"])
    ).to_be_visible()


@pytest.mark.parametrize("language", LANGUAGES)
def test_login_page_is_accessible(page, language):
    page.goto("/login/")
    switch_language(page, language)

    assert_accessible(page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_home_page_is_accessible(page, admin_user_, language):
    page.goto("/login/")
    switch_language(page, language)
    sign_in(page, "admin", language)
    expect(page.get_by_test_id("main-nav")).to_be_visible()

    assert_accessible(page)


@pytest.mark.parametrize("language", ["en"])
def test_the_accessibility_check_finds_an_unlabelled_field(page, language):
    """assert_accessible would pass on anything if axe-core did not run; show that it runs."""
    page.goto("/login/")
    page.evaluate(
        "() => document.querySelector('main').appendChild(document.createElement('input'))"
    )

    violations = accessibility_violations(page)

    assert [(v["id"], v["impact"]) for v in violations] == [("label", "critical")]


@pytest.mark.parametrize("language", ["en"])
def test_the_accessibility_check_fails_on_a_moderate_problem_too(page, language):
    """A second main landmark is "moderate" for axe-core: the check must not let it pass."""
    page.goto("/login/")
    page.evaluate("() => document.body.appendChild(document.createElement('main'))")

    violations = accessibility_violations(page)

    assert sorted((v["id"], v["impact"]) for v in violations) == [
        ("landmark-no-duplicate-main", "moderate"),
        ("landmark-unique", "moderate"),
    ]

"""Counter and support journeys in a real Chromium, in English and in Russian: enrol, search,
the member page and a receipt opened on it, an adjustment, a merge and a CSV import, each page
checked with axe-core."""

import re
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from loyalty.celery import app as celery_app
from loyalty.engine.purchases import Line, record_purchase
from loyalty.management.commands.seed_demo import DEMO_PASSWORD
from members.models import Member
from members.services import enrol_member
from tests.helpers import assert_accessible

pytestmark = pytest.mark.browser

SIGN_IN = {"en": "Sign in", "ru": "Войти"}
TEXT = {
    "en": {
        "enrol": "Enrol a customer",
        "new_number": "New number",
        "adjust": "Adjust points",
        "adjusted": "Points adjusted.",
        "merge": "Merge a duplicate into this member",
        "merged": "merged into this one",
        "done": "Done",
    },
    "ru": {
        "enrol": "Зарегистрировать покупателя",
        "new_number": "Новый номер",
        "adjust": "Начислить или списать баллы",
        "adjusted": "Баллы изменены.",
        "merge": "Объединить с дубликатом",
        "merged": "объединён",
        "done": "Готово",
    },
}


@pytest.fixture(params=["en", "ru"])
def language(request):
    return request.param


@pytest.fixture
def browser_locale(language):
    return "ru-RU" if language == "ru" else "en-US"


def sign_in(page, username, language):
    page.goto("/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name=SIGN_IN[language]).click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_manager_enrols_finds_and_credits_a_customer(page, manager, language):
    words = TEXT[language]
    sign_in(page, "manager", language)

    page.goto("/members/enrol/")
    expect(page.locator("h1")).to_have_text(words["enrol"])
    assert_accessible(page)
    page.locator("#id_phone").fill("8 912 555-12-34")
    expect(page.locator("#phone-check")).to_contain_text(words["new_number"])
    page.locator("#id_first_name").fill("Анна")
    page.locator("#id_last_name").fill("Смирнова")
    page.locator("#id_marketing_consent").check()
    page.locator("#enrol-form button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/members/2\d{12}/$"))
    member = Member.objects.get()
    assert str(member.phone) == "+79125551234"
    assert member.marketing_consent
    expect(page.get_by_test_id("card-number")).to_have_text(member.card_number)
    assert_accessible(page)

    page.goto("/members/")
    page.locator("#member-search").press_sequentially("912 555", delay=30)
    result = page.locator("#results").get_by_role("link", name="Анна Смирнова")
    expect(result).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=912"))
    assert_accessible(page)
    result.click()

    page.get_by_text(words["adjust"]).click()
    page.locator("#adjust input[name=points]").fill("120")
    page.locator("#adjust input[name=reason]").fill("Welcome bonus")
    page.locator("#adjust button[type=submit]").click()
    expect(page.get_by_text(words["adjusted"])).to_be_visible()
    expect(page.get_by_test_id("available")).to_have_text("120")
    assert_accessible(page)


def test_adjustment_over_the_limit_shows_the_error_in_place(page, manager, stores, language):
    member = enrol_member(phone="+79125550000", first_name="Олег", store=stores["MSK-01"])
    sign_in(page, "manager", language)
    page.goto(f"/members/{member.card_number}/")
    page.get_by_text(TEXT[language]["adjust"]).click()
    page.locator("#adjust input[name=points]").fill("5000")
    page.locator("#adjust input[name=reason]").fill("too much")
    page.locator("#adjust button[type=submit]").click()
    expect(page.locator("#adjust .errorlist")).to_be_visible()
    expect(page.get_by_test_id("available")).to_have_text("0")


def test_support_merges_a_duplicate(page, support, stores, language):
    keep = enrol_member(phone="+79125550001", first_name="Мария", store=stores["MSK-01"])
    duplicate = enrol_member(phone="+79125550002", first_name="Мария", store=stores["SPB-01"])
    sign_in(page, "support", language)
    page.goto(f"/members/{keep.card_number}/")
    page.get_by_text(TEXT[language]["merge"]).click()
    page.locator("#merge input[name=duplicate_card]").fill(duplicate.card_number)
    page.locator("#merge input[name=reason]").fill("Две карты")
    page.locator("#merge button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text(duplicate.card_number)
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == keep.pk
    assert_accessible(page)


def test_opening_a_receipt_on_the_member_page_shows_its_lines(page, manager, stores, language):
    member = enrol_member(phone="+79125550003", first_name="Ирина", store=stores["MSK-01"])
    record_purchase(
        store=stores["MSK-01"],
        external_id="R-LINES",
        card_number=member.card_number,
        amount=Decimal("250.00"),
        occurred_at=timezone.now(),
        lines=[Line(sku="TEA-GREEN", quantity=Decimal("1"), unit_price=Decimal("250.00"))],
    )
    sign_in(page, "manager", language)
    page.goto(f"/members/{member.card_number}/")
    receipt = page.locator("details.purchase")
    expect(receipt.get_by_text("TEA-GREEN")).to_have_count(0)

    receipt.locator("summary").click()

    expect(receipt.get_by_role("cell", name="TEA-GREEN")).to_be_visible()
    assert_accessible(page)

    page.goto(f"/members/{member.card_number}/purchases/{member.purchases.get().pk}/")
    expect(page.locator("h1")).to_contain_text("R-LINES")
    expect(page.get_by_role("cell", name="TEA-GREEN")).to_be_visible()
    assert_accessible(page)


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_admin_imports_members_and_sees_the_progress_finish(
    page, admin_user_, stores, language, eager_celery, tmp_path
):
    path = tmp_path / "members.csv"
    path.write_text(
        "phone,first_name,store\n+79125551111,Игорь,MSK-01\n+79125552222,Нина,SPB-01\n",
        encoding="utf-8",
    )
    sign_in(page, "admin", language)
    page.goto("/members/data/")
    assert_accessible(page)
    page.locator("#id_kind").select_option("members")
    page.locator("#id_file").set_input_files(str(path))
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_test_id("import-status")).to_have_text(TEXT[language]["done"])
    assert Member.objects.filter(phone__in=["+79125551111", "+79125552222"]).count() == 2
    assert_accessible(page)

"""The member's own page in Chromium on a phone (390 px): ask for a link, get it by e-mail from a
real SMTP server, open it, see points, lots and tier, change details; in Russian and English,
with no accessibility problem axe-core calls moderate or worse, and nothing wider than the
screen."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from loyalty.models import ProgramSettings
from members.models import ConsentEvent, Member
from messaging.services import deliver_due
from tests.factories import PurchaseFactory
from tests.helpers import assert_accessible
from tests.messaging.conftest import smtp_server  # noqa: F401
from tests.own_page.conftest import LINK

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# Whether anything on the page is wider than the viewport (a sideways scroll on a phone).
OVERFLOW = "() => document.documentElement.scrollWidth > window.innerWidth"

TEXTS = {
    "ru": {
        "send": "Прислать ссылку",
        "sent": "Проверьте сообщения",
        "open": "Открыть личный кабинет",
        "hello": "Здравствуйте, {name}!",
        "subject": "Вход в личный кабинет",
        "details": "Контакты и согласие",
        "save": "Сохранить",
        "saved": "Ваши данные сохранены.",
    },
    "en": {
        "send": "Send me a link",
        "sent": "Check your messages",
        "open": "Open my account",
        "hello": "Hello, {name}!",
        "subject": "Sign in to your account",
        "details": "Contact details and consent",
        "save": "Save",
        "saved": "Your details are saved.",
    },
}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_member_signs_in_on_a_phone_and_sees_their_points(
    language,
    browser,
    live_server,
    stores,
    smtp_server,  # noqa: F811 (the imported fixture)
):
    from members.services import enrol_member

    texts = TEXTS[language]
    name = "Анна" if language == "ru" else "Anna"
    program = ProgramSettings.load()
    program.referral_points = 300
    program.save()
    member = enrol_member(
        phone="+79161112233",
        email="anna@example.com",
        first_name=name,
        marketing_consent=True,
        store=stores["MSK-01"],
        language=language,
    )
    now = timezone.now()
    for n, amount in enumerate(["9000.00", "7000.00", "500.00"]):
        PurchaseFactory(
            member=member,
            amount=amount,
            occurred_at=now - timedelta(days=40 - n * 10),
            now=now - timedelta(days=40 - n * 10),
        )
    context = browser.new_context(
        base_url=live_server.url,
        locale="ru-RU" if language == "ru" else "en-US",
        viewport=PHONE,
        is_mobile=True,
    )
    context.add_cookies([{"name": "language", "value": language, "url": live_server.url}])
    context.set_default_timeout(10_000)
    phone = context.new_page()
    try:
        phone.goto("/me/")
        expect(phone.locator("html")).to_have_attribute("lang", language)
        assert_accessible(phone)
        assert not phone.evaluate(OVERFLOW)
        phone.get_by_label("Телефон или эл. почта" if language == "ru" else "Phone or e-mail").fill(
            "anna@example.com"
        )
        phone.get_by_role("button", name=texts["send"]).click()
        expect(phone.locator("h1")).to_have_text(texts["sent"])
        assert_accessible(phone)

        assert deliver_due() == {"sent": 1}
        [mail] = smtp_server.messages
        assert mail["Subject"] == texts["subject"]
        link = LINK.search(mail.get_content()).group(0)
        phone.goto(link[link.index("/me/") :])
        assert_accessible(phone)
        phone.get_by_role("button", name=texts["open"]).click()

        expect(phone.locator("h1")).to_have_text(texts["hello"].format(name=name))
        expect(phone.get_by_test_id("available")).to_have_text(
            "505"
        )  # 270 + 210 (at the old rate) + 25
        expect(phone.get_by_test_id("lot")).to_have_count(3)
        expect(phone.get_by_test_id("tier")).to_have_text(
            "Серебряный" if language == "ru" else "Silver"
        )
        expect(phone.get_by_test_id("tier-keep")).to_be_visible()
        expect(phone.get_by_test_id("referral-code")).to_have_text(member.referral_code)
        assert_accessible(phone)
        assert not phone.evaluate(OVERFLOW)

        phone.get_by_role("button", name=texts["details"]).click()
        assert_accessible(phone)
        assert not phone.evaluate(OVERFLOW)
        phone.locator("#id_marketing_consent").uncheck()
        phone.get_by_role("button", name=texts["save"]).click()
        expect(phone.locator(".messages")).to_have_text(texts["saved"])

        member.refresh_from_db()
        assert member.marketing_consent is False
        event = ConsentEvent.objects.filter(member=member).order_by("-id").first()
        assert (event.given, event.source) == (False, "member_page")

        phone.goto("/me/history/")
        expect(phone.get_by_test_id("history-row")).to_have_count(3)
        assert_accessible(phone)

        phone.goto("/me/erase/")
        assert_accessible(phone)
        assert not phone.evaluate(OVERFLOW)
        assert Member.objects.get(pk=member.pk).erased_at is None
    finally:
        context.close()

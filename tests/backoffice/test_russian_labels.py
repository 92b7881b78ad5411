"""Nothing English in the Russian pages: merchant-named rows by their Russian name, codes by
their translated labels, the audit log in words."""

import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.adjustments import adjust_points
from loyalty.models import Tier
from members.services import enrol_member, set_member_blocked
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey, SurveyResponse
from surveys.services import open_complaint


def _text(response):
    """What a person reads on the page: the HTML without scripts, styles and tags."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _ru(client, url, params=None):
    response = client.get(url, params, headers={"Accept-Language": "ru"})
    assert response.status_code == 200
    return _text(response)


@pytest.fixture
def default_surveys(stores):
    install_default_surveys(Survey, ComplaintCategory)
    return {survey.code: survey for survey in Survey.objects.all()}


def test_nps_page_names_tiers_and_channels_in_russian(client_as, marketer, default_surveys):
    member = enrol_member(phone="+79120000001", store=None)
    for tier_code, channel in [("bronze", "store"), ("silver", "online"), ("gold", "app")]:
        SurveyResponse.objects.create(
            survey=default_surveys["nps"],
            member=member,
            score=10,
            group="promoter",
            tier=Tier.objects.get(code=tier_code),
            channel=channel,
            answered_at=timezone.now(),
        )
    text = _ru(client_as("marketer"), reverse("surveys:nps-dashboard"))
    by_tier = text[text.index("По уровням") : text.index("По каналам")]
    by_channel = text[text.index("По каналам") : text.index("Комментарии")]
    assert re.findall(r"Бронзовый|Серебряный|Золотой", by_tier) == [
        "Бронзовый",
        "Серебряный",
        "Золотой",
    ]  # lowest tier first
    assert re.findall(r"Приложение|Онлайн|Магазин", by_channel) == [
        "Приложение",
        "Онлайн",
        "Магазин",
    ]
    for english in ["Bronze", "Silver", "Gold", "store", "online", "app"]:
        assert not re.search(rf"\b{english}\b", text), english


def test_staff_page_names_roles_in_russian(client_as, admin_user_, manager, support, marketer):
    response = client_as("admin").get(
        reverse("loyalty:staff-list"), headers={"Accept-Language": "ru"}
    )
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", response.content.decode(), flags=re.S)
    roles = {re.findall(r"<td>(.*?)</td>", row, flags=re.S)[2] for row in rows}
    assert roles == {"Администратор", "Управляющий магазином", "Поддержка", "Маркетолог"}


def test_tier_perks_are_named_in_russian(client_as, admin_user_):
    client = client_as("admin")
    program = _ru(client, reverse("loyalty:program"))
    assert "Бесплатная доставка" in program  # Gold's perk
    assert "free_delivery" not in program
    form = _ru(client, reverse("loyalty:tier-edit", args=[Tier.objects.get(code="gold").pk]))
    for perk in ["Бесплатная доставка", "Приоритетная поддержка", "Ранний доступ"]:
        assert perk in form
    assert "Название на английском" in form and "Название на русском" in form
    assert not re.search(r"free_delivery|priority_support|early_access", form)


def test_survey_definitions_have_a_name_per_language(client_as, marketer, default_surveys):
    client = client_as("marketer")
    listing = _ru(client, reverse("surveys:survey-list"))
    for name in ["NPS после покупки", "Удовлетворённость решением жалобы"]:
        assert name in listing
    assert "Почему участники перестают покупать" in listing
    for english in ["NPS after a purchase", "Why members stop buying", "Satisfaction with"]:
        assert english not in listing
    english = client.get(reverse("surveys:survey-list"), headers={"Accept-Language": "en"})
    assert "Why members stop buying" in _text(english)

    churn = default_surveys["churn"]
    url = reverse("surveys:survey-edit", args=[churn.pk])
    form = client.get(url, headers={"Accept-Language": "ru"}).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(name="Why members leave us", name_ru="Почему от нас уходят")
    assert client.post(url, data).status_code == 302
    churn.refresh_from_db()
    assert (churn.name, churn.name_ru) == ("Why members leave us", "Почему от нас уходят")
    assert "Почему от нас уходят" in _ru(client, reverse("surveys:survey-list"))


def test_survey_send_form_offers_tiers_by_russian_name(client_as, marketer, default_surveys):
    text = _ru(client_as("marketer"), reverse("surveys:survey-send"))
    assert re.findall(r"Бронзовый|Серебряный|Золотой", text) == [
        "Бронзовый",
        "Серебряный",
        "Золотой",
    ]
    assert not re.search(r"\b(Bronze|Silver|Gold|NPS after a purchase)\b", text)


def test_member_list_names_the_tier_in_russian(client_as, support, stores):
    enrol_member(phone="+79120000002", store=stores["MSK-01"])
    text = _ru(client_as("support"), reverse("members:member-list"))
    assert "Бронзовый" in text
    assert "Bronze" not in text


def test_complaint_category_is_named_in_russian(client_as, support, stores, default_surveys):
    member = enrol_member(phone="+79120000003", store=stores["MSK-01"])
    complaint = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="detractor"),
        subject="Долго ждали на кассе",
        source="phone",
        staff=support,
    )
    client = client_as("support")
    detail = _ru(client, reverse("complaints:complaint-detail", args=[complaint.pk]))
    assert "Недовольный ответ в опросе" in detail
    assert "Unhappy survey answer" not in detail
    listing = _ru(client, reverse("complaints:complaint-list"))
    assert "Недовольный ответ в опросе" in listing
    form = _ru(client, reverse("complaints:complaint-create"))
    assert "Качество товара" in form
    assert not re.search(r"Unhappy survey answer|Product quality|Service in store", form)


@pytest.fixture
def audited_member(stores, support):
    member = enrol_member(phone="+79120000004", store=stores["MSK-01"], staff=support)
    adjust_points(member_id=member.pk, points=50, reason="Подарок", staff=support)
    set_member_blocked(member_id=member.pk, blocked=True, reason="Потеряна карта", staff=support)
    return member


AUDIT_CODES = r"member\.enrol|points\.adjust|member\.block|points_balance|points_debt|blocked"


def test_audit_log_shows_actions_and_changes_in_words(client_as, admin_user_, audited_member):
    text = _ru(client_as("admin"), reverse("loyalty:audit-list"))
    assert "Регистрация участника" in text
    assert "Корректировка баллов" in text
    assert "Баланс баллов: 0 → 50" in text
    assert "Баллы: 50" in text
    assert "Блокировка карты" in text
    assert "Статус: Активен → Заблокирован" in text
    assert "Согласие на рассылки: нет" in text
    assert not re.search(AUDIT_CODES, text)


def test_member_page_staff_changes_are_in_words(client_as, support, audited_member):
    url = reverse("members:member-detail", args=[audited_member.card_number])
    text = _ru(client_as("support"), url)
    assert "Регистрация участника" in text
    assert "Корректировка баллов" in text
    assert "Статус: Активен → Заблокирован" in text
    assert not re.search(AUDIT_CODES, text)


def test_every_audit_action_the_code_writes_has_a_russian_name():
    """Scan the sources for the action codes audit rows are written with: each has a name."""
    from django.utils import translation

    from loyalty.templatetags.audit_tags import ACTION_LABELS

    root = Path(__file__).resolve().parents[2]
    codes = set()
    for app in ["loyalty", "members", "surveys", "campaigns", "messaging", "analytics"]:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            for match in re.finditer(
                r'\baction="(\w+\.\w+)"(?: if [^"]+ else "(\w+\.\w+)")?', source
            ):
                codes |= {code for code in match.groups() if code}
            for match in re.finditer(r'save_with_audit\([^)]*action="(\w+)"', source):
                codes |= {f"{match[1]}.create", f"{match[1]}.edit"}
    assert {"member.enrol", "member.unblock", "survey.edit", "staff.create"} <= codes
    assert sorted(codes - set(ACTION_LABELS)) == []
    for code in codes:
        with translation.override("en"):
            english = str(ACTION_LABELS[code])
        with translation.override("ru"):
            assert str(ACTION_LABELS[code]) != english, code


def test_audit_log_of_administration_has_no_codes_or_english(
    client_as, admin_user_, marketer, stores, default_surveys
):
    from campaigns.services import save_segment
    from loyalty import roles
    from loyalty.engine.administration import save_staff_user
    from loyalty.engine.apikeys import create_api_key
    from loyalty.models import Store, User
    from surveys.services import start_survey_send

    client = client_as("admin")
    gold = Tier.objects.get(code="gold")
    edit = client.post(
        reverse("loyalty:tier-edit", args=[gold.pk]),
        {
            "code": "gold",
            "name": "Gold",
            "name_ru": "Золотой",
            "threshold": "50000",
            "earn_rate": "0.0700",
            "discount_percent": "5",
            "perks": ["free_delivery", "priority_support"],
        },
    )
    assert edit.status_code == 302
    save_staff_user(
        user=User.objects.get(username="marketer"),
        role=roles.SUPPORT,
        stores=[],
        password="",
        staff=admin_user_,
    )
    silver = Tier.objects.get(code="silver")
    save_segment(
        name="Серебряные из Москвы",
        definition={
            "tiers": [silver.pk],
            "enrolled_stores": [stores["MSK-01"].pk],
            "consent": "yes",
        },
        staff=marketer,
    )
    create_api_key(store=Store.objects.get(code="MSK-01"), name="Касса 3", staff=admin_user_)
    start_survey_send(
        survey=default_surveys["nps"], filters={"tier": "silver", "store": ""}, staff=marketer
    )

    text = _ru(client, reverse("loyalty:audit-list"))
    assert "Изменение уровня" in text
    assert "Привилегии: Бесплатная доставка → Бесплатная доставка, Приоритетная поддержка" in text
    assert "Скидка, %: 0,00 → 5" in text
    assert "Роль: Маркетолог → Поддержка" in text
    assert "Уровень: Серебряный" in text  # the segment's tier, and the survey send's
    assert "Согласие на рассылки: да" in text
    assert "Опрос: NPS после покупки" in text
    changes = text[text.index("Изменения") :]
    latin = set(re.findall(r"[A-Za-z][A-Za-z_.]+", changes)) - {
        "API",
        "MSK",
        "NPS",
        "admin",
        "marketer",
    }
    assert latin == set()


def test_demo_staff_have_russian_names(db):
    from loyalty.management.commands.seed_demo import seed_staff, seed_stores
    from loyalty.models import User

    seed_stores()
    User.objects.create(username="support", first_name="Support")  # an older demo's name
    seed_staff()
    names = dict(User.objects.values_list("username", "last_name"))
    assert names == {
        "admin": "Соколова",
        "manager": "Орлов",
        "support": "Белова",
        "marketer": "Зайцев",
    }

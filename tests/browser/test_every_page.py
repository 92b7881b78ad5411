"""Every page, as every role allowed to open it, in a real Chromium on realistic demo data:
nothing English is visible in the Russian pages, and axe-core finds no serious, critical or
moderate problem in either language.

The pages come from the access table of tests/foundation/test_url_matrix.py (ROUTES), so a page
added there is crawled here too; the error pages and the API docs page are added below.
"""

import random
import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.foundation.test_url_matrix import PUBLIC, ROUTES, SIGNED_IN
from tests.helpers import accessibility_violations, describe_violations

pytestmark = pytest.mark.browser

ROLES = ("admin", "manager", "support", "marketer")

# Answers that are not pages for people: downloads, a JSON health check, htmx fragments
# (checked inside the page that loads them), and POST-only views (405 on GET).
NOT_PAGES = {
    "healthz",
    "members:phone-check",
    "members:import-errors",
    "members:export-members",
    "members:export-purchases",
    "members:member-personal-data",
    "me:personal-data",
    "analytics:export",
    "analytics:liability-export",
    "analytics:effect-export",
    "analytics:roi-export",
    "analytics:whatif-export",
    "campaigns:campaign-results-csv",
    "messaging:member-messages",
    "survey-follow-up",
}

# Latin words a Russian page may show, each for a reason. Codes by their shape never reach this
# list: anything with a digit (store codes MSK-01, receipts, card numbers, SKUs such as TEA-100),
# e-mail addresses, links, file names, IANA time zones (Europe/Moscow). Nor does text marked as
# code (<code>: CSV column names, job names) or marked as English (lang="en": the language
# switch's "English", Swagger UI's own labels on the API page).
ALLOWED_LATIN = {
    # Abbreviations Russian business text writes in Latin letters.
    "NPS",
    "API",
    "ID",
    "CSV",
    "JSON",
    "SMS",
    "RFM",
    "CLV",
    "SKU",
    "OpenAPI",
    "REST",
    # Proper names: the framework of the administration site, the statistical models of CLV.
    "Django",
    "BG",
    "NBD",
    "Gamma-Gamma",
    "Swagger",
    "UI",
    # Language choices name each language in itself, as the language switch does.
    "English",
    # The demo staff's login names: codes people type, not words to translate.
    "admin",
    "manager",
    "support",
    "marketer",
    # Product codes of the demo till without digits (SKU and category codes the POS sends).
    "CAKE",
    "MUG",
    "coffee",
    "tea",
    "bakery",
    "goods",
    "gift_cards",
}

LATIN = re.compile(r"[A-Za-z][A-Za-z_'’.\-]*[A-Za-z]|[A-Za-z]")
CODE_SHAPES = (
    re.compile(r"\d"),  # store codes, receipts, card numbers, SKUs, versions
    re.compile(r"@"),  # e-mail addresses
    re.compile(r"^(https?:|/)"),  # links and paths
    re.compile(r"^[\w-]+\.(csv|json|txt)$", re.IGNORECASE),  # file names
    re.compile(r"^[A-Z][a-z]+/[A-Za-z_]+$"),  # IANA time zones
)
PUNCTUATION = "()[]{}<>,;:!?«»\"'“”„…·•—–|*"

# The text a person sees (and hears: labels and placeholders), without <code> and without
# anything marked lang="en".
VISIBLE_TEXT = """() => {
  const skipped = (node) => {
    const el = node.nodeType === 1 ? node : node.parentElement;
    if (!el) return true;
    if (el.closest('code, kbd, samp, script, style, template, [lang="en"]')) return true;
    return !el.checkVisibility({ visibilityProperty: true });
  };
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    if (!skipped(walker.currentNode)) parts.push(walker.currentNode.textContent);
  }
  const names = ['placeholder', 'title', 'aria-label', 'alt'];
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label], [alt]')) {
    if (el.closest('[lang="en"]')) continue;
    for (const name of names) if (el.getAttribute(name)) parts.push(el.getAttribute(name));
  }
  for (const el of document.querySelectorAll('option, input[type=submit], input[type=button]')) {
    if (!el.closest('[lang="en"]')) parts.push(el.textContent || el.value || '');
  }
  return parts.join('\\n');
}"""


def latin_words(text):
    """The Latin words of ``text`` that are not codes, names or allowed abbreviations."""
    found = []
    for raw in text.split():
        token = raw.strip(PUNCTUATION)
        if not token or any(shape.search(token) for shape in CODE_SHAPES):
            continue
        for word in LATIN.findall(token):
            word = word.strip(".-'’")
            if word and word not in ALLOWED_LATIN:
                found.append(word)
    return found


def english_on(text):
    """The English words in a Russian page's text, each once, sorted."""
    return sorted(set(latin_words(text)))


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("Магазин MSK-01, чек DEMO-000012, карта 2412345678901", []),
        ("anna@example.com, members.csv, Europe/Moscow, NPS и API-ключи", []),
        ("Уровень Gold, канал store", ["Gold", "store"]),
        ("Источник: Unhappy survey answer", ["Unhappy", "answer", "survey"]),
        ("Page not found", ["Page", "found", "not"]),
        ("Сохранить changes", ["changes"]),
        ("member.edit first_name: Мария", ["first_name", "member.edit"]),
    ],
)
def test_the_word_check_tells_codes_from_english(text, english):
    assert english_on(text) == english


@dataclass
class Visit:
    label: str
    url: str
    role: str | None  # None: signed out
    status: int = 200


def seed(make_staff, stores):
    """A year of the demo's purchases, surveys and complaints, and a few rows of every kind."""
    from loyalty import roles
    from loyalty.engine.apikeys import create_api_key
    from loyalty.jobs.runner import run_job
    from loyalty.management.commands.seed_demo import (
        DEMO_STAFF_NAMES,
        seed_feedback,
        seed_members,
    )
    from loyalty.models import JobRun
    from members.models import ImportJob, Member
    from members.services import update_member

    names = {username: first for username, (first, _last) in DEMO_STAFF_NAMES.items()}
    users = {
        "admin": make_staff("admin", roles.ADMINISTRATOR, first_name=names["admin"]),
        "manager": make_staff(
            "manager", roles.STORE_MANAGER, ["MSK-01"], first_name=names["manager"]
        ),
        "support": make_staff("support", roles.SUPPORT, first_name=names["support"]),
        "marketer": make_staff("marketer", roles.MARKETER, first_name=names["marketer"]),
    }
    rng = random.Random(2026)
    seed_members(16, rng)
    seed_feedback(rng)
    run_job("refresh_analytics", trigger=JobRun.Trigger.COMMAND)

    # The member of MSK-01 with the longest history, with a change by staff on record.
    member = max(
        Member.objects.filter(enrolled_store=stores["MSK-01"]),
        key=lambda m: m.purchases.count(),
    )
    update_member(
        member_id=member.pk, staff=users["support"], reason="Уточнили имя", first_name="Мария"
    )
    purchase = member.purchases.order_by("-occurred_at").first()

    from campaigns.models import Campaign, Segment
    from surveys.models import Complaint, Survey, SurveySend

    segment = Segment.objects.create(name="Постоянные покупатели", definition={})
    campaign = Campaign.objects.create(
        name="Двойные баллы на выходных",
        segment=segment,
        kind=Campaign.Kind.BONUS_POINTS,
        points=100,
        subject_ru="Подарок",
        message_ru="Вам начислено 100 баллов",
    )
    create_api_key(store=stores["MSK-01"], name="Касса 1")
    job = ImportJob.objects.create(kind=ImportJob.Kind.MEMBERS, file="imports/members.csv")
    send = SurveySend.objects.create(survey=Survey.objects.get(code="nps"))
    complaint = Complaint.objects.order_by("-pk").first()
    from surveys.services import create_invitation

    _invitation, token = create_invitation(
        survey=Survey.objects.get(code="nps"), member=member, now=timezone.now()
    )
    return users, {
        "members:member-detail": {"card_number": member.card_number},
        "members:member-edit": {"card_number": member.card_number},
        "members:member-purchase": {"card_number": member.card_number, "pk": purchase.pk},
        "purchases:purchase-refund": {"pk": purchase.pk},
        "members:import-detail": {"pk": job.pk},
        "loyalty:store-edit": {"pk": stores["MSK-01"].pk},
        "loyalty:staff-edit": {"pk": users["manager"].pk},
        "surveys:survey-send-detail": {"pk": send.pk},
        "campaigns:campaign-detail": {"pk": campaign.pk},
        "campaigns:campaign-edit": {"pk": campaign.pk},
        "campaigns:segment-edit": {"pk": segment.pk},
        "complaints:complaint-detail": {"pk": complaint.pk},
        "survey-answer": {"token": token},
        "survey-follow-up": {"token": token},
        # The members whose own pages are visited, one per language (the page speaks the
        # member's language, not the browser's).
        MEMBER: {
            "ru": member,
            "en": _english_speaking(
                Member.objects.filter(status="active").exclude(pk=member.pk).first()
            ),
        },
    }


def _english_speaking(member):
    from members.models import Member

    Member.objects.filter(pk=member.pk).update(language="en")
    member.refresh_from_db()
    return member


# The pages of a member's own session (tests/own_page/), visited as the member.
MEMBER = "member"
MEMBER_PAGES = ("me:account", "me:history", "me:details", "me:erase")


def member_session_cookie(member, url):
    from django.db import transaction

    from members.self_service import SESSION_COOKIE, _new_link, sign_in_with_link

    with transaction.atomic():
        token = _new_link(member, "email", timezone.now())
    _member, key = sign_in_with_link(token=token, address="127.0.0.2")
    return {"name": SESSION_COOKIE, "value": key, "url": f"{url}/me/"}


def visits_for(users, kwargs, stores):
    visits = []
    for name, route in sorted(ROUTES.items()):
        if name in NOT_PAGES or route.status != 200:
            continue
        if name in kwargs:
            url = reverse(name, kwargs=kwargs[name])
        else:
            url = reverse(name, kwargs=route.kwargs(stores) if route.kwargs else {})
        if route.permission == PUBLIC:
            visits.append(Visit(name, url, None))
            continue
        for role in ROLES:
            if route.permission is SIGNED_IN or users[role].has_perm(route.permission):
                visits.append(Visit(name, url, role))
    visits += [Visit(name, reverse(name), MEMBER) for name in MEMBER_PAGES]
    visits += [
        Visit("API docs", reverse("api-docs"), None),
        Visit("404 page", "/no-such-page/", "manager", status=404),
        Visit("404 page, signed out", "/no-such-page/", None, status=404),
        Visit("403 page", reverse("loyalty:staff-list"), "manager", status=403),
    ]
    return visits


def test_every_page_in_russian_has_no_english_and_no_accessibility_problem(
    browser, live_server, make_staff, stores
):
    users, kwargs = seed(make_staff, stores)
    visits = visits_for(users, kwargs, stores)
    tabs = {}

    def tab(role, language):
        """One signed-in tab per role and language, reused for every page."""
        if (role, language) not in tabs:
            context = browser.new_context(
                base_url=live_server.url, locale="ru-RU" if language == "ru" else "en-US"
            )
            context.set_default_timeout(10_000)
            cookies = [{"name": "language", "value": language, "url": live_server.url}]
            if role == MEMBER:
                cookies.append(member_session_cookie(kwargs[MEMBER][language], live_server.url))
            elif role is not None:
                client = Client()
                client.force_login(users[role])
                session = client.cookies["sessionid"].value
                cookies.append({"name": "sessionid", "value": session, "url": live_server.url})
            context.add_cookies(cookies)
            tabs[role, language] = context.new_page()
        return tabs[role, language]

    english, inaccessible, wrong_status = {}, [], []
    checked = set()  # (page, language) pairs axe-core has seen
    try:
        for visit in visits:
            # Russian as every role that may open the page; English once, for axe-core.
            languages = ["ru"] if (visit.label, "en") in checked else ["ru", "en"]
            for language in languages:
                page = tab(visit.role, language)
                response = page.goto(visit.url)
                if response.status != visit.status:
                    wrong_status.append(f"{visit.url} as {visit.role}: {response.status}")
                    continue
                # Fragments the page loads at once (the member's messages), Swagger UI's
                # operations on the API page.
                page.wait_for_function("() => !document.querySelector('[hx-trigger=load]')")
                if visit.label == "API docs":
                    page.locator(".opblock").first.wait_for()
                who = f"{visit.label} ({visit.url}) as {visit.role or 'anonymous'}, {language}"
                if language == "ru":
                    found = english_on(page.evaluate(VISIBLE_TEXT))
                    if found:
                        english[who] = found
                if (visit.label, language) not in checked:
                    checked.add((visit.label, language))
                    violations = accessibility_violations(page)
                    if violations:
                        inaccessible.append(f"{who}:\n{describe_violations(violations)}")
    finally:
        for page in tabs.values():
            page.context.close()

    assert not wrong_status, "pages answered an unexpected status:\n" + "\n".join(wrong_status)
    assert not inaccessible, (
        f"axe-core found problems on {len(inaccessible)} page(s):\n" + "\n".join(inaccessible)
    )
    assert not english, "English words in the Russian pages:\n" + "\n".join(
        f"{who}: {', '.join(words)}" for who, words in english.items()
    )

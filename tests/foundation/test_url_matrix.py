"""Every page checks access on the server: each URL, as each role and as nobody.

ROUTES below is the one table of who may open what. A view added without a line here fails
``test_every_url_is_in_the_access_table``; the matrix then GETs it as anonymous and as each role.
"""

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import PERSONAS

PUBLIC = "public"  # no sign-in needed
SIGNED_IN = None  # any signed-in member of staff
LIABILITY = ("loyalty.view_analytics", "loyalty.all_stores")  # administrator and marketer


@dataclass(frozen=True)
class Route:
    """Who may open a URL, and what a permitted GET answers.

    permission: PUBLIC, SIGNED_IN, a permission such as "loyalty.view_members", or a tuple of
        permissions that are all needed.
    kwargs: builds the URL's arguments, given the `stores` fixture (for URLs with arguments).
    status: what a GET answers to someone allowed (405 for POST-only views).
    signed_in_status: for PUBLIC pages that answer staff differently (the login page sends a
        signed-in user home).
    denied_status: what someone without the permission gets.
    outside: builds the arguments of an object outside the store manager's stores; the manager
        must get 404 for it (existence does not leak) while the administrator finds it.
    """

    permission: str | None
    kwargs: Any = None
    status: int = 200
    signed_in_status: int | None = None
    denied_status: int = 403
    outside: Any = None
    notes: str = field(default="", compare=False)


_phones = itertools.count(1)


def member_at(code):
    """URL kwargs for a member enrolled at store ``code`` (through the enrolment service)."""

    def build(stores):
        from members.services import enrol_member

        member = enrol_member(phone=f"+7916{next(_phones):07d}", store=stores[code])
        return {"card_number": member.card_number}

    return build


def purchase_at(code, *, with_card=False):
    """URL kwargs for a purchase recorded at store ``code`` (through the purchase service), and
    with ``with_card`` the card of the member who made it."""

    def build(stores):
        from django.utils import timezone

        from loyalty.engine.purchases import record_purchase
        from loyalty.models import Purchase

        card = member_at(code)(stores)["card_number"]
        receipt = f"M-{next(_phones)}"
        record_purchase(
            store=stores[code],
            external_id=receipt,
            amount=Decimal("1000.00"),
            occurred_at=timezone.now(),
            card_number=card,
        )
        pk = Purchase.objects.get(store=stores[code], external_id=receipt).pk
        return {"pk": pk, "card_number": card} if with_card else {"pk": pk}

    return build


def an_import(stores):
    from members.models import ImportJob

    job = ImportJob.objects.create(kind=ImportJob.Kind.MEMBERS, file="imports/members.csv")
    return {"pk": job.pk}


def a_store(stores):
    return {"pk": stores["SPB-01"].pk}


def an_api_key(stores):
    from loyalty.engine.apikeys import create_api_key

    key, _raw = create_api_key(store=stores["MSK-01"], name="till 1")
    return {"pk": key.pk}


def a_webhook(stores):
    from webhooks.models import Subscription

    return {
        "pk": Subscription.objects.create(
            url="https://crm.example.com/hooks", events=["member.enrolled"]
        ).pk
    }


def a_webhook_delivery(stores):
    from django.utils import timezone

    from webhooks.models import Delivery, Subscription

    subscription = Subscription.objects.create(
        url="https://crm.example.com/hooks", events=["member.enrolled"]
    )
    now = timezone.now()
    delivery = Delivery.objects.create(
        subscription=subscription,
        event_type="member.enrolled",
        event_key="member.enrolled:1",
        payload={"member_id": 1},
        next_attempt_at=now,
        created_at=now,
    )
    return {"pk": delivery.pk}


def a_staff_user(stores):
    from loyalty.models import User

    return {"pk": User.objects.create_user("cashier", password=None).pk}


def a_tier(stores):
    from loyalty.models import Tier

    return {"pk": Tier.objects.order_by("pk").first().pk}


def a_plan(stores):
    from decimal import Decimal

    from loyalty.models import MembershipPlan, Tier

    plan, _ = MembershipPlan.objects.get_or_create(
        code="plus",
        defaults={
            "name": "Plus",
            "name_ru": "Плюс",
            "fee": Decimal("299.00"),
            "trial_days": 14,
            "tier": Tier.objects.get(code="gold"),
            "perks": ["free_delivery"],
        },
    )
    return {"pk": plan.pk}


def a_product_rule(stores):
    from loyalty.models import ProductRule

    rule, _ = ProductRule.objects.get_or_create(kind="no_redeem", category="tobacco")
    return {"pk": rule.pk}


def a_survey(stores):
    from surveys.defaults import install_default_surveys
    from surveys.models import ComplaintCategory, Survey

    install_default_surveys(Survey, ComplaintCategory)
    return {"pk": Survey.objects.get(code="nps").pk}


def a_survey_link(stores):
    """A fresh single-use link (each GET of the matrix gets its own, still unanswered)."""
    from django.utils import timezone

    from members.models import Member
    from surveys.models import Survey
    from surveys.services import create_invitation

    a_survey(stores)
    member = Member.objects.get(card_number=IN_MSK(stores)["card_number"])
    _invitation, token = create_invitation(
        survey=Survey.objects.get(code="nps"), member=member, now=timezone.now()
    )
    return {"token": token}


def a_survey_send(stores):
    from surveys.models import Survey, SurveySend

    a_survey(stores)
    return {"pk": SurveySend.objects.create(survey=Survey.objects.get(code="nps")).pk}


def a_complaint(stores):
    from members.models import Member
    from surveys.models import ComplaintCategory
    from surveys.services import open_complaint

    a_survey(stores)
    member = Member.objects.get(card_number=IN_MSK(stores)["card_number"])
    case = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="service"),
        subject="matrix",
        source="phone",
        store=stores["MSK-01"],
    )
    return {"pk": case.pk}


def a_segment(stores):
    from campaigns.models import Segment

    return {"pk": Segment.objects.create(name="matrix", definition={}).pk}


def a_campaign(stores):
    from campaigns.models import Campaign, Segment

    segment = Segment.objects.create(name="matrix", definition={})
    campaign = Campaign.objects.create(name="matrix", segment=segment, kind="message")
    return {"pk": campaign.pk}


IN_MSK = member_at("MSK-01")  # in the store manager's store
IN_SPB = member_at("SPB-01")  # outside it: the manager must get 404, as if it did not exist

ROUTES = {
    "home": Route(SIGNED_IN),
    "login": Route(PUBLIC, signed_in_status=302, notes="signed-in staff are sent home"),
    "logout": Route(PUBLIC, status=405, notes="POST only; see test_login"),
    "healthz": Route(PUBLIC),
    "members:member-list": Route("loyalty.view_members"),
    "members:member-enrol": Route("loyalty.enrol_member"),
    "members:phone-check": Route("loyalty.enrol_member"),
    "members:member-detail": Route("loyalty.view_members", IN_MSK, outside=IN_SPB),
    "members:member-edit": Route("loyalty.edit_member", IN_MSK, outside=IN_SPB),
    "members:member-purchase": Route(
        "loyalty.view_members",
        purchase_at("MSK-01", with_card=True),
        outside=purchase_at("SPB-01", with_card=True),
    ),
    "members:member-adjust": Route("loyalty.adjust_points", IN_MSK, status=405, outside=IN_SPB),
    "members:member-block": Route("loyalty.edit_member", IN_MSK, status=405, outside=IN_SPB),
    "members:member-merge": Route("loyalty.edit_member", IN_MSK, status=405, outside=IN_SPB),
    "members:member-membership-join": Route(
        "loyalty.edit_member", IN_MSK, status=405, outside=IN_SPB
    ),
    "members:member-membership-cancel": Route(
        "loyalty.edit_member", IN_MSK, status=405, outside=IN_SPB
    ),
    "members:member-personal-data": Route(
        "loyalty.handle_personal_data",
        IN_MSK,
        notes="the member's whole file (152-FZ request): support and administrators only",
    ),
    "members:member-erase": Route(
        "loyalty.handle_personal_data", IN_MSK, status=405, notes="POST with the card typed"
    ),
    "members:member-send-link": Route(
        "loyalty.edit_member",
        IN_MSK,
        status=405,
        notes="POST: a link to the member's own page (outside a manager's stores: 404, "
        "tests/own_page/test_sign_in.py)",
    ),
    "members:import": Route("loyalty.manage_program"),
    "members:import-detail": Route("loyalty.manage_program", an_import),
    "members:import-errors": Route("loyalty.manage_program", an_import),
    "members:export-members": Route(
        "loyalty.manage_program", notes="every member's phone and e-mail: administrators only"
    ),
    "members:export-purchases": Route("loyalty.view_members"),
    "purchases:purchase-list": Route("loyalty.view_members"),
    "purchases:purchase-create": Route("loyalty.record_purchase"),
    "purchases:purchase-refund": Route(
        "loyalty.record_purchase", purchase_at("MSK-01"), outside=purchase_at("SPB-01")
    ),
    "loyalty:store-list": Route("loyalty.manage_program"),
    "loyalty:store-create": Route("loyalty.manage_program"),
    "loyalty:store-edit": Route("loyalty.manage_program", a_store),
    "loyalty:apikey-list": Route("loyalty.manage_api_keys"),
    "loyalty:apikey-revoke": Route("loyalty.manage_api_keys", an_api_key, status=405),
    "webhooks:subscription-list": Route("loyalty.manage_api_keys"),
    "webhooks:subscription-create": Route("loyalty.manage_api_keys"),
    "webhooks:subscription-edit": Route("loyalty.manage_api_keys", a_webhook),
    "webhooks:subscription-delete": Route("loyalty.manage_api_keys", a_webhook, status=405),
    "webhooks:subscription-rotate": Route("loyalty.manage_api_keys", a_webhook, status=405),
    "webhooks:delivery-list": Route("loyalty.manage_api_keys"),
    "webhooks:delivery-resend": Route("loyalty.manage_api_keys", a_webhook_delivery, status=405),
    "webhooks:signing": Route("loyalty.manage_api_keys"),
    "loyalty:staff-list": Route("loyalty.manage_staff"),
    "loyalty:staff-create": Route("loyalty.manage_staff"),
    "loyalty:staff-edit": Route("loyalty.manage_staff", a_staff_user),
    "loyalty:program": Route("loyalty.manage_program"),
    "loyalty:tier-create": Route("loyalty.manage_program"),
    "loyalty:tier-edit": Route("loyalty.manage_program", a_tier),
    "loyalty:plan-create": Route("loyalty.manage_program"),
    "loyalty:plan-edit": Route("loyalty.manage_program", a_plan),
    "loyalty:product-rule-create": Route("loyalty.manage_program"),
    "loyalty:product-rule-edit": Route("loyalty.manage_program", a_product_rule),
    "loyalty:audit-list": Route("loyalty.view_audit"),
    "surveys:nps-dashboard": Route("loyalty.view_analytics"),
    "analytics:dashboard": Route("loyalty.view_analytics"),
    "analytics:export": Route("loyalty.view_analytics", lambda stores: {"kind": "figures"}),
    # The liability is the whole program's (ledger entries have no store): not a manager's.
    "analytics:liability": Route(LIABILITY),
    "analytics:effect": Route(LIABILITY),
    "analytics:effect-export": Route(LIABILITY),
    "analytics:roi": Route(LIABILITY),
    "analytics:roi-export": Route(LIABILITY),
    "analytics:whatif": Route(LIABILITY),
    "analytics:whatif-export": Route(LIABILITY, status=400, notes="400 without a proposal"),
    "analytics:liability-export": Route(LIABILITY, lambda stores: {"kind": "ifrs15"}),
    "surveys:survey-list": Route("loyalty.manage_surveys"),
    "surveys:survey-edit": Route("loyalty.manage_surveys", a_survey),
    "surveys:survey-send": Route("loyalty.manage_surveys"),
    "surveys:survey-send-detail": Route("loyalty.manage_surveys", a_survey_send),
    "survey-answer": Route(PUBLIC, a_survey_link, notes="the member's single-use link"),
    "survey-follow-up": Route(PUBLIC, a_survey_link),
    # The member's own page: public to reach, its account pages need a member's session (its own
    # cookie, tests/own_page/): staff and anonymous alike are sent to the sign-in page.
    "me:sign-in": Route(PUBLIC),
    "me:link-sent": Route(PUBLIC),
    "me:sign-in-link": Route(
        PUBLIC, lambda stores: {"token": "a" * 43}, notes="GET shows a button; POST uses it"
    ),
    "me:sign-out": Route(PUBLIC, status=405),
    "me:account": Route(PUBLIC, status=302, notes="a member's session only"),
    "me:history": Route(PUBLIC, status=302, notes="a member's session only"),
    "me:details": Route(PUBLIC, status=302, notes="a member's session only"),
    "me:personal-data": Route(PUBLIC, status=302, notes="a member's session only"),
    "me:erase": Route(PUBLIC, status=302, notes="a member's session only"),
    "campaigns:campaign-list": Route("loyalty.manage_campaigns"),
    "campaigns:campaign-create": Route("loyalty.manage_campaigns"),
    "campaigns:campaign-detail": Route("loyalty.manage_campaigns", a_campaign),
    "campaigns:campaign-edit": Route("loyalty.manage_campaigns", a_campaign),
    "campaigns:campaign-send": Route("loyalty.manage_campaigns", a_campaign, status=405),
    "campaigns:campaign-cancel": Route("loyalty.manage_campaigns", a_campaign, status=405),
    "campaigns:campaign-results-csv": Route("loyalty.manage_campaigns", a_campaign),
    "campaigns:segment-list": Route("loyalty.manage_campaigns"),
    "campaigns:coupon-list": Route("loyalty.manage_campaigns"),
    "campaigns:coupon-export": Route("loyalty.manage_campaigns"),
    "campaigns:segment-create": Route("loyalty.manage_campaigns"),
    "campaigns:segment-edit": Route("loyalty.manage_campaigns", a_segment),
    "messaging:job-list": Route("loyalty.run_jobs"),
    "messaging:job-run": Route(
        "loyalty.run_jobs", lambda stores: {"name": "expire_points"}, status=405
    ),
    "messaging:member-messages": Route("loyalty.view_members", IN_MSK, outside=IN_SPB),
    "messaging:partner-settlement": Route("loyalty.manage_program"),
    "complaints:complaint-list": Route("loyalty.handle_complaints"),
    "complaints:complaint-create": Route("loyalty.handle_complaints"),
    "complaints:complaint-detail": Route("loyalty.handle_complaints", a_complaint),
    "complaints:complaint-take": Route("loyalty.handle_complaints", a_complaint, status=405),
    "complaints:complaint-status": Route("loyalty.handle_complaints", a_complaint, status=405),
    "complaints:complaint-note": Route("loyalty.handle_complaints", a_complaint, status=405),
    "complaints:complaint-resolve": Route("loyalty.handle_complaints", a_complaint, status=405),
}

# Not walked: Django's admin (its own staff check), the language switch (POST only, for
# everyone), static files, and the API under /api/ (API-key auth, tested in tests/engine/),
# unless a name under /api/ is listed in ROUTES (a page for people, such as the API docs).
SKIPPED_NAMESPACES = {"admin"}
SKIPPED_NAMES = {"set_language"}
SKIPPED_PREFIXES = ("api/", settings.STATIC_URL.lstrip("/"))


def walk(patterns=None, prefix="", namespace=""):
    """Yield (URL name, route string) for every pattern, following includes."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.namespace in SKIPPED_NAMESPACES:
                continue
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}{pattern.namespace}:"
            yield from walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield name, route


def walked_routes():
    """The URL names the matrix must cover, with their routes."""
    found = {}
    for name, route in walk():
        if name in ROUTES:
            found[name] = route
            continue
        if name in SKIPPED_NAMES or route.startswith(SKIPPED_PREFIXES):
            continue
        found[name or f"<unnamed {route}>"] = route
    return found


WALKED = walked_routes()


def test_every_url_is_in_the_access_table():
    missing = sorted(set(WALKED) - set(ROUTES))
    assert not missing, (
        f"URLs with no line in ROUTES (tests/foundation/test_url_matrix.py): {missing}. "
        "Add each with the permission its view requires."
    )


def test_every_line_of_the_access_table_is_a_url():
    stale = sorted(set(ROUTES) - set(WALKED))
    assert not stale, f"ROUTES lists names no URL has any more: {stale}"


def expected_status(route, persona, user):
    if route.permission == PUBLIC:
        if user is not None and route.signed_in_status is not None:
            return route.signed_in_status
        return route.status
    if user is None:
        return "login"
    needed = route.permission if isinstance(route.permission, tuple) else (route.permission,)
    if route.permission is SIGNED_IN or user.has_perms(needed):
        return route.status
    return route.denied_status


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(WALKED))
def test_url_answers_each_persona_as_the_table_says(
    name, persona, client_as, persona_user, stores, healthy_worker
):
    route = ROUTES.get(name)
    assert route is not None, f"{name} has no line in ROUTES"
    kwargs = route.kwargs(stores) if route.kwargs else {}
    url = reverse(name, kwargs=kwargs)
    user = persona_user(persona)

    response = client_as(persona).get(url)

    expected = expected_status(route, persona, user)
    if expected == "login":
        assert response.status_code == 302, f"{url} as anonymous: {response.status_code}"
        login_url = resolve_url(settings.LOGIN_URL)
        assert response["Location"] == f"{login_url}?next={quote(url)}"
    else:
        assert response.status_code == expected, f"{url} as {persona}"
        if expected == 302:
            assert not response["Location"].startswith(resolve_url(settings.LOGIN_URL))


@pytest.fixture
def healthy_worker(db):
    """A fresh worker heartbeat, so that /healthz answers 200 here."""
    from django.utils import timezone

    from loyalty.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(hostname="celery@matrix", seen_at=timezone.now())


@pytest.mark.parametrize("name", sorted(name for name, route in ROUTES.items() if route.outside))
def test_a_store_manager_gets_404_for_what_is_outside_their_stores(name, client_as, stores):
    route = ROUTES[name]
    url = reverse(name, kwargs=route.outside(stores))
    # POST-only views check the scope on POST: an empty form, which changes nothing (the
    # administrator, who may see the member, gets the form's errors: 422).
    method, found = ("post", 422) if route.status == 405 else ("get", route.status)

    assert getattr(client_as("manager"), method)(url).status_code == 404
    assert getattr(client_as("admin"), method)(url).status_code == found

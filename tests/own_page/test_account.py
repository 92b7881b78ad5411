"""What the member sees and does on their own page, and what a member's session cannot reach."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.tiers import qualifying_value, tier_outlook
from loyalty.models import AuditLog, Coupon, ProgramSettings, Tier
from members.models import ConsentEvent, Member, MemberLoginLink
from members.personal_data import member_data
from members.self_service import SESSION_COOKIE
from tests.own_page.conftest import at

pytestmark = pytest.mark.django_db


def test_the_outlook_says_what_to_spend_by_when_to_keep_silver_and_reach_gold(enrol, buy):
    member = enrol()
    buy(member, "10000.00", at("2025-01-10 12:00"))
    buy(member, "6000.00", at("2025-03-01 12:00"))  # crosses 15,000: Silver at once
    member.refresh_from_db()
    program = ProgramSettings.load()
    now = at("2025-06-01 12:00")

    outlook = tier_outlook(program, member, now)

    assert member.tier.code == "silver"
    assert outlook["value"] == Decimal("16000.00") == qualifying_value(program, member.pk, now)
    # On 10 January 2026 the first purchase leaves the 365-day window: 6,000 left, below
    # 15,000; 30 days' grace after that, the nightly job would lower the tier.
    assert outlook["keep"] == {
        "tier": member.tier,
        "amount": Decimal("9000.00"),
        "falls_at": at("2026-01-10 12:00"),
        "by": at("2026-02-09 12:00"),
    }
    assert outlook["reach"] == {
        "tier": Tier.objects.get(code="gold"),
        "amount": Decimal("34000.00"),
        "by": at("2026-01-10 12:00"),
    }


def test_at_the_lowest_tier_there_is_nothing_to_keep(enrol, buy):
    member = enrol()
    buy(member, "1200.00", at("2025-05-01 12:00"))
    member.refresh_from_db()

    outlook = tier_outlook(ProgramSettings.load(), member, at("2025-06-01 12:00"))

    assert outlook["keep"] is None
    assert outlook["reach"]["amount"] == Decimal("13800.00")


def test_a_count_programme_counts_purchases(enrol, buy):
    program = ProgramSettings.load()
    program.tier_qualification = ProgramSettings.Qualification.COUNT
    program.save()
    Tier.objects.filter(code="silver").update(threshold=3)
    Tier.objects.filter(code="gold").update(threshold=10)
    member = enrol()
    for day in ("2025-01-10", "2025-02-10", "2025-03-10"):
        buy(member, "100.00", at(f"{day} 12:00"))
    member.refresh_from_db()

    outlook = tier_outlook(program, member, at("2025-06-01 12:00"))

    assert member.tier.code == "silver"
    assert outlook["value"] == 3
    assert outlook["keep"]["amount"] == 1
    assert outlook["keep"]["by"] == at("2026-02-09 12:00")
    assert outlook["reach"]["amount"] == 7


def test_the_page_shows_balance_pending_points_and_each_lot_with_its_expiry(enrol, buy, signed_in):
    program = ProgramSettings.load()
    member = enrol(email="anna@example.com")
    now = timezone.now()
    buy(member, "2000.00", now - timedelta(days=3))  # 60 points, available
    program.pending_days = 14
    program.save()
    buy(member, "1000.00", now - timedelta(days=1))  # 30 points, pending for 13 more days
    client = signed_in(member)

    response = client.get(reverse("me:account"))

    assert response.status_code == 200
    assert response.context["balance"].available == 60
    assert response.context["balance"].pending == 30
    lots = response.context["lots"]
    assert [(lot.remaining, lot.expires_at.date()) for lot in lots] == [
        (60, (now - timedelta(days=3) + timedelta(days=365)).date()),
        (30, (now - timedelta(days=1) + timedelta(days=14 + 365)).date()),
    ]
    page = response.content.decode()
    assert page.count('data-testid="lot"') == 2


def test_every_line_of_the_history_gives_a_reason_and_the_history_is_paginated(
    enrol, buy, signed_in, support
):
    from loyalty.engine.adjustments import adjust_points

    member = enrol(email="anna@example.com")
    now = timezone.now()
    for n in range(22):
        buy(member, "100.00", now - timedelta(hours=30 - n))
    adjust_points(member_id=member.pk, points=5, reason="Извинение за очередь", staff=support)
    client = signed_in(member)

    first = client.get(reverse("me:history"))
    second = client.get(reverse("me:history"), {"page": 2})

    assert len(first.context["rows"]) == 20
    assert len(second.context["rows"]) == 3
    assert first.context["page"].has_next and not second.context["page"].has_next
    reasons = [reason for _entry, reason in first.context["rows"] + second.context["rows"]]
    assert all(reasons)
    assert reasons[0] == "Извинение за очередь"
    assert reasons[1].startswith("Покупка F-")
    assert "в магазине «" in reasons[1]


def test_coupons_and_the_referral_code_are_on_the_page(enrol, signed_in):
    program = ProgramSettings.load()
    program.referral_points = 300
    program.save()
    member = enrol(email="anna@example.com")
    Coupon.objects.create(code="ANNA-10", kind="percent", value=Decimal("10"), member=member)
    Coupon.objects.create(
        code="OLD-1",
        kind="fixed",
        value=Decimal("100"),
        member=member,
        valid_until=timezone.now() - timedelta(days=1),
    )

    response = signed_in(member).get(reverse("me:account"))

    assert [coupon.code for coupon in response.context["coupons"]] == ["ANNA-10"]
    assert response.context["referral"] == {"code": member.referral_code, "points": 300}
    page = response.content.decode()
    assert "ANNA-10" in page and "OLD-1" not in page
    assert "вы оба получите 300 баллов" in page


def test_without_referral_points_there_is_no_referral_section(enrol, signed_in):
    member = enrol(email="anna@example.com")

    response = signed_in(member).get(reverse("me:account"))

    assert response.context["referral"] is None
    assert 'data-testid="referral-code"' not in response.content.decode()


def test_the_member_changes_contact_and_consent_audited_with_the_consent_history(enrol, signed_in):
    member = enrol(email="anna@example.com", phone="+79161234567")  # consent given at enrolment
    client = signed_in(member)

    response = client.post(
        reverse("me:details"),
        {"email": "Anna.New@Example.com", "phone": "8 916 765-43-21", "language": "en"},
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.email, str(member.phone), member.language) == (
        "anna.new@example.com",
        "+79167654321",
        "en",
    )
    assert member.marketing_consent is False
    withdrawn = ConsentEvent.objects.filter(member=member).order_by("-id").first()
    assert (withdrawn.given, withdrawn.source, withdrawn.staff) == (False, "member_page", None)
    entry = AuditLog.objects.get(action="member.edit")
    assert entry.actor is None
    assert entry.reason == "Изменено участником в личном кабинете"
    assert entry.before["email"] == "anna@example.com"
    assert entry.after["email"] == "anna.new@example.com"
    assert entry.after["marketing_consent"] == "False"

    client.post(
        reverse("me:details"),
        {
            "email": "anna.new@example.com",
            "phone": "+79167654321",
            "language": "en",
            "marketing_consent": "on",
        },
    )
    given = ConsentEvent.objects.filter(member=member).order_by("-id").first()
    assert (given.given, given.source) == (True, "member_page")
    assert given.text.startswith("I agree to receive offers")  # the text shown, in English
    assert ConsentEvent.objects.filter(member=member).count() == 3


def test_a_phone_another_member_has_is_refused_under_the_field(enrol, signed_in):
    enrol(phone="+79160000001")
    member = enrol(email="anna@example.com", phone="+79161234567")

    response = signed_in(member).post(
        reverse("me:details"),
        {"email": "anna@example.com", "phone": "+79160000001", "language": "ru"},
    )

    assert response.status_code == 422
    assert response.context["form"].errors["phone"]
    member.refresh_from_db()
    assert str(member.phone) == "+79161234567"


def test_the_download_is_the_personal_data_file_and_is_audited(enrol, buy, signed_in):
    member = enrol(email="anna@example.com")
    buy(member, "1000.00", timezone.now() - timedelta(days=1))

    response = signed_in(member).get(reverse("me:personal-data"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="personal-data-{member.card_number}.json"'
    )
    data = json.loads(response.content)
    member.refresh_from_db()
    expected = json.loads(json.dumps(member_data(member), ensure_ascii=False))
    data.pop("exported_at"), expected.pop("exported_at")
    assert data == expected
    assert data["purchases"][0]["amount"] == "1000.00"
    entry = AuditLog.objects.get(action="member.export")
    assert (entry.actor, entry.member_id, entry.after) == (None, member.pk, {"by": "member"})


def test_erasure_needs_the_card_number_typed_then_erases_and_signs_out(enrol, signed_in):
    member = enrol(email="anna@example.com", first_name="Анна")
    client = signed_in(member)

    wrong = client.post(reverse("me:erase"), {"confirm": "123"})
    assert wrong.status_code == 422
    member.refresh_from_db()
    assert member.erased_at is None

    done = client.post(reverse("me:erase"), {"confirm": member.card_number})

    assert done.status_code == 200
    member.refresh_from_db()
    assert member.erased_at is not None
    assert (member.first_name, member.email, member.phone, member.status) == (
        "",
        "",
        None,
        Member.Status.BLOCKED,
    )
    entry = AuditLog.objects.get(action="member.erase")
    assert (entry.actor, entry.reason) == (None, "По запросу участника в личном кабинете")
    assert client.get(reverse("me:account"))["Location"] == reverse("me:sign-in")


def test_a_member_session_opens_only_that_members_own_page(enrol, signed_in):
    anna = enrol(email="anna@example.com")
    boris = enrol(email="boris@example.com")
    client = signed_in(anna)

    page = client.get(reverse("me:account"))
    data = json.loads(client.get(reverse("me:personal-data")).content)

    assert page.context["member"] == anna
    assert boris.card_number not in page.content.decode()
    assert data["profile"]["card_number"] == anna.card_number
    # Nothing under /me/ takes a card number: the session's member is the only one it shows.
    assert "card_number" not in str(reverse("me:personal-data"))


@pytest.mark.parametrize(
    "url",
    [
        lambda card: reverse("home"),
        lambda card: reverse("members:member-list"),
        lambda card: reverse("members:member-detail", args=[card]),
        lambda card: reverse("members:member-personal-data", args=[card]),
        lambda card: reverse("loyalty:program"),
        lambda card: reverse("loyalty:audit-list"),
        lambda card: reverse("analytics:dashboard"),
        lambda card: reverse("complaints:complaint-list"),
    ],
)
def test_a_member_session_never_opens_a_back_office_page(url, enrol, signed_in):
    anna = enrol(email="anna@example.com")
    boris = enrol(email="boris@example.com")
    client = signed_in(anna)

    for card in (anna.card_number, boris.card_number):
        response = client.get(url(card))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_a_member_session_is_no_api_key(enrol, signed_in):
    anna = enrol(email="anna@example.com")

    response = signed_in(anna).get(f"/api/v1/members/{anna.card_number}")

    assert response.status_code == 401


def test_a_staff_session_does_not_open_a_members_page(enrol, client_as):
    enrol(email="anna@example.com")

    for persona in ("admin", "support"):
        response = client_as(persona).get(reverse("me:account"))
        assert response.status_code == 302
        assert response["Location"] == reverse("me:sign-in")


def test_every_form_of_the_members_page_needs_its_csrf_token(enrol, signed_in):
    member = enrol(email="anna@example.com")
    key = signed_in(member).cookies[SESSION_COOKIE].value
    from django.db import transaction

    from members.self_service import _new_link

    with transaction.atomic():
        token = _new_link(member, "email", timezone.now())
    client = Client(enforce_csrf_checks=True)
    posts = {
        reverse("me:sign-in"): {"contact": "anna@example.com"},
        reverse("me:sign-in-link", args=[token]): {},
        reverse("me:details"): {"email": "x@example.com", "phone": "+79161234567"},
        reverse("me:erase"): {"confirm": member.card_number},
        reverse("me:sign-out"): {},
    }
    client.cookies[SESSION_COOKIE] = key

    for url, body in posts.items():
        assert client.post(url, body).status_code == 403, url

    member.refresh_from_db()
    assert member.erased_at is None and member.email == "anna@example.com"
    assert MemberLoginLink.objects.filter(used_at__isnull=True).count() == 1
    # With the token the same client gets through.
    client.get(reverse("me:account"))
    csrf = client.cookies["csrftoken"].value
    response = client.post(reverse("me:sign-out"), {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302

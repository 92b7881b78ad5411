"""Complaints: opened by staff or the API, taken, worked and resolved with compensation."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.ledger import ledger_drift
from loyalty.models import AuditLog, Coupon, LedgerEntry
from surveys.models import Complaint, ComplaintCategory, SurveyInvitation
from surveys.services import open_complaint


@pytest.fixture
def case(surveys, member, support):
    return open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="service"),
        subject="Нагрубили на кассе",
        source="phone",
        store=member.enrolled_store,
        staff=support,
    )


def test_support_opens_a_case_from_a_phone_call(client_as, support, surveys, member):
    response = client_as("support").post(
        reverse("complaints:complaint-create"),
        {
            "card_number": member.card_number,
            "category": ComplaintCategory.objects.get(code="delivery").pk,
            "source": "phone",
            "subject": "Не привезли заказ",
            "description": "Ждала два дня",
        },
    )
    case = Complaint.objects.get()
    assert response["Location"] == reverse("complaints:complaint-detail", args=[case.pk])
    assert (case.member, case.source, case.status) == (member, "phone", "new")
    assert case.due_at - case.created_at == timedelta(hours=48)


def test_queue_is_ordered_by_due_time_and_flags_overdue(client_as, support, surveys, member):
    late = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="points"),
        subject="late",
        source="phone",
        now=timezone.now() - timedelta(days=3),
    )
    soon = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="points"),
        subject="soon",
        source="phone",
    )
    page = client_as("support").get(reverse("complaints:complaint-list"))
    rows = list(page.context["page"])
    assert [row.pk for row in rows] == [late.pk, soon.pk]
    assert [row.overdue for row in rows] == [True, False]
    assert page.content.decode().count('data-testid="overdue"') == 1


def test_take_and_resolve_from_the_queue_with_points_and_a_coupon(client_as, support, case, member):
    client = client_as("support")
    client.post(reverse("complaints:complaint-take", args=[case.pk]), {"back": "queue"})
    case.refresh_from_db()
    assert (case.assignee, case.status) == (support, "in_progress")
    response = client.post(
        reverse("complaints:complaint-resolve", args=[case.pk]),
        {
            "back": "queue",
            "resolution": "Извинились, начислили баллы",
            "points": "300",
            "coupon_amount": "500",
        },
    )
    assert response["Location"] == reverse("complaints:complaint-list")
    case.refresh_from_db()
    member.refresh_from_db()
    assert case.status == "resolved"
    assert case.compensation_points == 300
    assert member.points_balance == 300
    entry = LedgerEntry.objects.get(member=member)
    assert (entry.kind, entry.points, entry.staff) == ("adjust", 300, support)
    coupon = Coupon.objects.get(member=member)
    assert (coupon.kind, str(coupon.value), coupon.max_uses) == ("fixed", "500.00", 1)
    assert case.compensation_coupon == coupon
    actions = list(
        AuditLog.objects.filter(member=member).order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "complaint.open",
        "complaint.take",
        "complaint.compensate",
        "complaint.resolve",
    ]
    # The member is asked how satisfied they are with the resolution.
    assert SurveyInvitation.objects.get(member=member).survey.code == "csat"
    assert list(ledger_drift()) == []


def test_compensation_above_the_role_limit_changes_nothing(client_as, support, case, member):
    response = client_as("support").post(
        reverse("complaints:complaint-resolve", args=[case.pk]),
        {"resolution": "too generous", "points": "2001"},
    )
    assert response.status_code == 422
    case.refresh_from_db()
    member.refresh_from_db()
    assert case.status == "new"
    assert member.points_balance == 0
    assert not AuditLog.objects.filter(action="complaint.resolve").exists()


def test_statuses_follow_the_allowed_path(client_as, support, case):
    client = client_as("support")
    client.post(reverse("complaints:complaint-status", args=[case.pk]), {"status": "waiting"})
    case.refresh_from_db()
    assert case.status == "waiting"
    client.post(reverse("complaints:complaint-status", args=[case.pk]), {"status": "closed"})
    case.refresh_from_db()
    assert case.status == "waiting"  # a case is resolved before it is closed


def test_notes_are_internal_and_kept(client_as, support, case):
    client_as("support").post(
        reverse("complaints:complaint-note", args=[case.pk]), {"text": "Позвонила, не дозвонилась"}
    )
    assert case.notes.get().author == support


def test_a_case_shows_on_the_member_page(client_as, support, case, member):
    page = client_as("support").get(reverse("members:member-detail", args=[member.card_number]))
    assert case.subject in page.content.decode()


def test_api_opens_a_case(api, surveys, member):
    response = api.post(
        "/api/v1/complaints",
        {"card_number": member.card_number, "category": "product", "subject": "Сломанная кружка"},
        format="json",
    )
    assert response.status_code == 201
    case = Complaint.objects.get(pk=response.json()["id"])
    assert (case.source, case.member, case.store.code) == ("api", member, "MSK-01")
    bad = api.post("/api/v1/complaints", {"category": "nope", "subject": "x"}, format="json")
    assert bad.status_code == 400
    assert "category" in bad.json()["error"]["fields"]


def test_queue_queries_do_not_grow_with_cases(
    client_as, support, surveys, member, django_assert_max_num_queries
):
    client = client_as("support")
    category = ComplaintCategory.objects.get(code="points")
    for index in range(3):
        open_complaint(member=member, category=category, subject=f"c{index}", source="phone")
    with django_assert_max_num_queries(20) as few:
        response = client.get(reverse("complaints:complaint-list"))
    assert response.status_code == 200
    assert sorted(case.subject for case in response.context["page"]) == ["c0", "c1", "c2"]
    for index in range(10):
        open_complaint(member=member, category=category, subject=f"d{index}", source="phone")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("complaints:complaint-list"))
    assert response.status_code == 200
    subjects = [case.subject for case in response.context["page"]]
    assert sorted(subjects) == [f"c{i}" for i in range(3)] + [f"d{i}" for i in range(10)]
    page = response.content.decode()
    assert all(f"{subject}</a>" in page for subject in subjects)


def test_the_compensations_reason_is_in_the_merchants_language_whoever_resolves(support, case):
    """An English-speaking colleague's compensation still reads in Russian on Russian pages."""
    from django.utils import translation

    from surveys.services import resolve_complaint

    with translation.override("en"):
        resolve_complaint(complaint_id=case.pk, staff=support, resolution="Sorry", points=100)

    entry = LedgerEntry.objects.get(member=case.member)
    assert entry.reason == f"Компенсация по обращению №{case.pk}"

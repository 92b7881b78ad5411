"""A case worked from the pages, each step in its own committed transaction, as in production.

The other complaint tests run inside the test's own transaction, which would hide a service that
lost its ``@transaction.atomic`` (its ``select_for_update`` then fails with a 500 on PostgreSQL).
Here nothing wraps the requests, so each page's service must open its transaction itself.
"""

import pytest
from django.urls import reverse

from loyalty.models import Coupon, LedgerEntry
from messaging.models import Outbox
from surveys.models import Complaint, ComplaintCategory, SurveyInvitation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def case(client_as, support, surveys, member):
    """A case support opened from the complaint form."""
    response = client_as("support").post(
        reverse("complaints:complaint-create"),
        {
            "card_number": member.card_number,
            "category": ComplaintCategory.objects.get(code="service").pk,
            "source": "phone",
            "subject": "Нагрубили на кассе",
        },
    )
    case = Complaint.objects.get()
    assert response["Location"] == reverse("complaints:complaint-detail", args=[case.pk])
    return case


def test_support_opens_takes_notes_and_moves_a_case_each_step_committed(client_as, support, case):
    client = client_as("support")

    taken = client.post(reverse("complaints:complaint-take", args=[case.pk]))
    noted = client.post(
        reverse("complaints:complaint-note", args=[case.pk]), {"text": "Позвонила клиентке"}
    )
    waiting = client.post(
        reverse("complaints:complaint-status", args=[case.pk]), {"status": "waiting"}
    )

    assert [taken.status_code, noted.status_code, waiting.status_code] == [302, 302, 302]
    case.refresh_from_db()
    assert (case.assignee, case.status) == (support, "waiting")
    assert list(case.notes.values_list("text", "author")) == [("Позвонила клиентке", support.pk)]


def test_support_resolves_a_case_with_points_and_a_coupon_in_one_committed_transaction(
    client_as, support, case, member
):
    response = client_as("support").post(
        reverse("complaints:complaint-resolve", args=[case.pk]),
        {"resolution": "Извинились, начислили баллы", "points": "300", "coupon_amount": "500"},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("complaints:complaint-detail", args=[case.pk])
    case.refresh_from_db()
    member.refresh_from_db()
    assert (case.status, case.compensation_points) == ("resolved", 300)
    assert member.points_balance == 300
    entry = LedgerEntry.objects.get()
    assert (entry.member, entry.kind, entry.points, entry.staff) == (member, "adjust", 300, support)
    coupon = Coupon.objects.get(member=member)
    assert (case.compensation_coupon, str(coupon.value)) == (coupon, "500.00")
    # The satisfaction survey is asked in the same transaction: its link and its message.
    assert SurveyInvitation.objects.get(member=member).survey.code == "csat"
    assert list(Outbox.objects.values_list("purpose", "key")) == [
        ("csat_survey", f"csat:{case.pk}")
    ]


def test_a_detractors_answer_on_the_public_page_opens_a_case_in_its_own_transaction(client, invite):
    token = invite()

    response = client.post(f"/s/{token}/", {"score": "3", "comment": "Долго ждал на кассе"})

    assert response.status_code == 200
    case = Complaint.objects.get()
    assert (case.source, case.category.code, case.description) == (
        "survey",
        "detractor",
        "Долго ждал на кассе",
    )

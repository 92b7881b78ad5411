"""Erasure of a member's personal data: the person is gone, the books add up as before."""

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from analytics.models import DailyFigures, MemberStats, PeriodFigures, SegmentFigures
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.ledger import ledger_drift
from loyalty.jobs.runner import run_job
from loyalty.models import AuditLog, LedgerEntry, Purchase
from members.models import ConsentEvent, Member
from members.personal_data import erase_personal_data
from members.services import enrol_member, merge_members, set_member_blocked, update_member
from messaging.models import Message, Outbox
from surveys.models import Complaint, ComplaintNote, Survey, SurveyResponse
from surveys.services import answer_survey, create_invitation
from tests.factories import MemberFactory
from tests.stories import member_with_a_story


@pytest.fixture
def story(stores, support):
    return member_with_a_story(stores, support)


def erase(member, staff, reason="Запрос клиента от 07.12"):
    return erase_personal_data(member_id=member.pk, reason=reason, staff=staff)


def test_erasure_empties_the_profile_and_frees_the_phone(story, support, stores):
    phone = str(story.phone)

    erase(story, support)

    story.refresh_from_db()
    profile = (story.phone, story.email, story.first_name, story.last_name, story.birth_date)
    assert profile == (None, "", "", "", None)
    assert (story.external_ref, story.search_text, story.status) == (
        None,
        story.card_number,
        "blocked",
    )
    assert story.erased_at is not None
    again = enrol_member(phone=phone, first_name="Другой человек", store=stores["MSK-01"])
    assert again.pk != story.pk and str(again.phone) == phone


def test_erasure_empties_free_text_and_cancels_waiting_messages(story, support):
    erase(story, support)

    assert list(Complaint.objects.filter(member=story).values_list("subject", "description")) == [
        ("—", "")
    ]
    assert list(ComplaintNote.objects.filter(complaint__member=story).values_list("text")) == [
        ("",)
    ]
    assert list(SurveyResponse.objects.filter(member=story).values_list("score", "comment")) == [
        (9, "")
    ]
    sent = Message.objects.get(member=story)
    assert (sent.address, sent.subject, sent.body, sent.status) == ("", "", "", "sent")
    waiting = Outbox.objects.get(member=story)
    assert (waiting.status, waiting.context) == ("cancelled", {})


def test_erasure_withdraws_consent_in_the_history(story, support):
    erase(story, support)

    story.refresh_from_db()
    assert (story.marketing_consent, story.consent_at, story.consent_text) == (False, None, "")
    assert list(
        ConsentEvent.objects.filter(member=story)
        .order_by("id")
        .values_list("given", "source", "staff__username")
    ) == [(True, "store", None), (False, "erasure", "support")]


def test_the_ledger_and_the_figures_stay_exactly_as_they_were(story, support):
    entries_before = list(LedgerEntry.objects.filter(member=story).values_list("id", "points"))
    purchases = Purchase.objects.filter(member=story)
    totals = {"amount": Sum("amount"), "paid": Sum("paid_amount"), "earned": Sum("earned_points")}
    assert purchases.aggregate(**totals) == {"amount": 1000, "paid": 1000, "earned": 30}

    erase(story, support)

    story.refresh_from_db()
    assert story.points_balance == 73  # 30 earned - 7 reversed by the refund + 50 adjusted
    assert list(LedgerEntry.objects.filter(member=story).values_list("id", "points")) == (
        entries_before
    )
    assert LedgerEntry.objects.filter(member=story).aggregate(total=Sum("points")) == {"total": 73}
    assert purchases.aggregate(**totals) == {"amount": 1000, "paid": 1000, "earned": 30}
    assert list(ledger_drift()) == []


def test_erasure_is_audited_with_its_reason_and_no_personal_data(story, support):
    erase(story, support)

    entry = AuditLog.objects.get(action="member.erase")
    assert (entry.actor, entry.member, entry.reason) == (support, story, "Запрос клиента от 07.12")
    assert entry.before == {"status": "active"}
    assert entry.after == {"status": "blocked", "cards": 1, "messages_cancelled": 1}


def test_erasing_twice_changes_nothing_more(story, support):
    first = erase(story, support)
    second = erase(story, support, reason="ещё раз")

    assert (second.erased_at, second.status) == (first.erased_at, "blocked")
    assert AuditLog.objects.filter(action="member.erase").count() == 1
    assert ConsentEvent.objects.filter(member=story, given=False).count() == 1


def test_a_reason_is_required(story, support):
    with pytest.raises(LoyaltyError) as refused:
        erase(story, support, reason="  ")
    assert refused.value.code == "reason_required"
    story.refresh_from_db()
    assert story.erased_at is None


def test_an_erased_member_cannot_be_edited_unblocked_or_merged(story, support, stores):
    erase(story, support)
    other = MemberFactory()
    attempts = [
        lambda: update_member(member_id=story.pk, staff=support, first_name="Анна"),
        lambda: set_member_blocked(member_id=story.pk, blocked=False, reason="x", staff=support),
        lambda: merge_members(source_id=story.pk, target_id=other.pk, reason="x", staff=support),
    ]
    for attempt in attempts:
        with pytest.raises(LoyaltyError) as refused:
            attempt()
        assert refused.value.code == "member_erased"


def test_duplicates_merged_into_the_member_are_erased_too(story, support):
    duplicate = MemberFactory(first_name="Анюта", email="anyuta@example.com")
    merge_members(source_id=duplicate.pk, target_id=story.pk, reason="дубль", staff=support)

    erase(story, support)

    duplicate.refresh_from_db()
    assert (duplicate.first_name, duplicate.email, duplicate.phone, duplicate.status) == (
        "",
        "",
        None,
        "merged",
    )
    assert AuditLog.objects.get(action="member.erase").after["cards"] == 2


def test_the_page_erases_after_the_card_number_is_typed(client_as, story, support):
    client = client_as("support")
    url = reverse("members:member-erase", args=[story.card_number])

    wrong = client.post(url, {"reason": "Запрос", "confirm": "1234"}, HTTP_ACCEPT_LANGUAGE="en")
    assert wrong.status_code == 422
    assert "This is not the member&#x27;s card number." in wrong.content.decode()
    story.refresh_from_db()
    assert story.erased_at is None

    done = client.post(url, {"reason": "Запрос", "confirm": story.card_number})
    assert done.status_code == 302
    page = client.get(reverse("members:member-detail", args=[story.card_number]))
    html = page.content.decode()
    assert 'data-testid="erased"' in html
    assert "Смирнова" not in html
    assert reverse("members:member-edit", args=[story.card_number]) not in html


@pytest.mark.parametrize("persona", ["manager", "marketer"])
def test_other_roles_may_not_erase(client_as, story, persona):
    url = reverse("members:member-erase", args=[story.card_number])
    response = client_as(persona).post(url, {"reason": "x", "confirm": story.card_number})
    assert response.status_code == 403
    assert Member.objects.get(pk=story.pk).erased_at is None


def test_the_erased_members_file_holds_no_personal_data(client_as, story, support):
    erase(story, support)
    response = client_as("support").get(
        reverse("members:member-personal-data", args=[story.card_number])
    )
    text = response.content.decode()
    for personal in ("Анна", "Смирнова", "anna@example.com", "+7913", "CRM-1"):
        assert personal not in text


def test_the_members_export_leaves_an_erased_member_out(client_as, story, support, admin_user_):
    kept = MemberFactory()
    erase(story, support)

    response = client_as("admin").get(reverse("members:export-members"))

    rows = b"".join(response.streaming_content).decode().splitlines()
    assert len(rows) == 1 + 1
    assert rows[1].startswith(str(kept.phone))


def test_the_nightly_analytics_are_the_same_after_an_erasure(story, support):
    tables = (DailyFigures, PeriodFigures, SegmentFigures, MemberStats)

    def figures():
        return {
            table.__name__: sorted(
                tuple(sorted((k, v) for k, v in row.items() if k != "id"))
                for row in table.objects.values()
            )
            for table in tables
        }

    as_of = timezone.now()
    run_job("refresh_analytics", as_of=as_of)
    before = figures()
    assert before["DailyFigures"] != []  # the story's purchase and refund are in them

    erase(story, support)
    run_job("refresh_analytics", as_of=as_of)

    assert figures() == before


def test_the_erasure_shows_in_words_among_the_staff_changes(client_as, story, support):
    erase(story, support)
    response = client_as("support").get(
        reverse("members:member-detail", args=[story.card_number]), HTTP_ACCEPT_LANGUAGE="ru"
    )
    html = response.content.decode()
    changes = html[html.index('id="history"') :]
    assert "Персональные данные удалены" in changes
    assert "Статус: Активен → Заблокирован" in changes
    assert "Карты: 1" in changes
    assert "member.erase" not in changes and "messages_cancelled" not in changes


def test_a_survey_link_not_yet_answered_stops_working(story, support):
    _invitation, token = create_invitation(
        survey=Survey.objects.get(code="nps"), member=story, now=timezone.now()
    )
    erase(story, support)

    with pytest.raises(LoyaltyError) as refused:
        answer_survey(token=token, score=3, comment="Анна снова недовольна")
    assert refused.value.code == "survey_link_expired"
    assert SurveyResponse.objects.filter(member=story).count() == 1

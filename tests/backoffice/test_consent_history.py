"""Consent history: every change of marketing consent is kept with its text, time, source and
staff, whichever way it happened (enrolment at the till or the API, import, the edit page)."""

import importlib
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from members.forms import CONSENT_TEXT
from members.models import ConsentEvent, Member
from members.services import enrol_member, enrol_members, update_member
from tests.factories import MemberFactory


def history(member):
    return list(
        ConsentEvent.objects.filter(member=member)
        .order_by("id")
        .values_list("given", "source", "text", "staff__username")
    )


def test_enrolment_with_consent_starts_the_history_with_the_text_shown(stores):
    when = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    member = enrol_member(
        phone="+79120000001",
        marketing_consent=True,
        consent_text="Я согласен получать предложения.",
        channel=Member.Channel.APP,
        store=stores["MSK-01"],
        now=when,
    )
    event = ConsentEvent.objects.get(member=member)
    assert (event.given, event.source, event.text, event.created_at, event.staff) == (
        True,
        "app",
        "Я согласен получать предложения.",
        when,
        None,
    )


def test_enrolment_without_consent_has_no_history(stores):
    member = MemberFactory(marketing_consent=False)
    assert history(member) == []


def test_the_enrolment_page_records_who_enrolled_and_the_text_shown(client_as, manager, stores):
    client_as("manager").post(
        reverse("members:member-enrol"),
        {
            "phone": "+79120000002",
            "store": stores["MSK-01"].pk,
            "language": "en",
            "marketing_consent": "on",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert history(Member.objects.get()) == [(True, "store", str(CONSENT_TEXT), "manager")]


def import_row(phone, consent):
    return {
        "phone": phone,
        "email": "",
        "first_name": "",
        "last_name": "",
        "birth_date": None,
        "marketing_consent": consent,
        "store": None,
        "external_ref": None,
        "enrolled_at": datetime(2025, 5, 1, tzinfo=UTC),
    }


def test_an_import_writes_the_history_of_every_consenting_row_in_one_statement(
    stores, admin_user_, django_assert_num_queries
):
    small = [import_row("+79120000010", True), import_row("+79120000011", False)]
    with CaptureQueriesContext(connection) as counted:
        enrol_members(rows=small, staff=admin_user_)
    inserts = [q for q in counted.captured_queries if 'INTO "members_consentevent"' in q["sql"]]
    assert len(inserts) == 1
    large = [import_row(f"+7912000002{index}", index % 2 == 0) for index in range(8)]
    with django_assert_num_queries(len(counted.captured_queries)):
        enrol_members(rows=large, staff=admin_user_)
    events = ConsentEvent.objects.filter(member__phone__startswith="+79120000")
    assert events.count() == 1 + 4
    assert set(events.values_list("source", "created_at", "staff__username")) == {
        ("import", datetime(2025, 5, 1, tzinfo=UTC), "admin")
    }


def test_withdrawing_and_giving_again_on_the_edit_page_adds_to_the_history(
    client_as, support, stores
):
    member = MemberFactory(marketing_consent=True, consent_text="v1", channel="online")
    client = client_as("support")
    url = reverse("members:member-edit", args=[member.card_number])
    fields = {"phone": str(member.phone), "language": "ru"}

    assert client.post(url, fields, HTTP_ACCEPT_LANGUAGE="en").status_code == 302
    member.refresh_from_db()
    assert (member.marketing_consent, member.consent_at, member.consent_text) == (False, None, "")

    client.post(url, {**fields, "marketing_consent": "on"}, HTTP_ACCEPT_LANGUAGE="en")
    member.refresh_from_db()
    assert member.marketing_consent is True
    assert history(member) == [
        (True, "online", "v1", None),
        (False, "backoffice", "", "support"),
        (True, "backoffice", str(CONSENT_TEXT), "support"),
    ]


def test_a_save_that_changes_no_consent_adds_nothing(support, stores):
    member = MemberFactory(marketing_consent=True, consent_text="v1")
    update_member(
        member_id=member.pk,
        staff=support,
        marketing_consent=True,
        consent_text="another text",
        first_name="Олег",
    )
    member.refresh_from_db()
    assert (member.first_name, member.consent_text) == ("Олег", "v1")
    assert history(member) == [(True, "store", "v1", None)]


def test_the_member_page_shows_the_consent_history(client_as, support, stores):
    member = MemberFactory(marketing_consent=True, consent_text="Согласие на рассылку")
    update_member(member_id=member.pk, staff=support, marketing_consent=False)
    page = client_as("support").get(
        reverse("members:member-detail", args=[member.card_number]), HTTP_ACCEPT_LANGUAGE="en"
    )
    html = page.content.decode()
    section = html[html.index('id="consents"') : html.index('id="history"')]
    assert section.count("<tr>") == 1 + 2  # the header and two events
    assert "Согласие на рассылку" in section
    assert section.index("Withdrawn") < section.index("Given")  # newest first
    assert "support" in section


def test_the_migration_starts_the_history_of_members_who_consented(stores):
    given_at = timezone.now() - timedelta(days=40)
    with_consent = MemberFactory(marketing_consent=True, consent_text="old text", now=given_at)
    MemberFactory(marketing_consent=False)
    ConsentEvent.objects.all().delete()  # as before the migration
    migration = importlib.import_module("members.migrations.0009_consent_history")

    # Not entered: on SQLite entering turns foreign keys off, which a transaction refuses.
    migration.first_events(apps, connection.schema_editor())

    event = ConsentEvent.objects.get()
    assert (event.member, event.given, event.source, event.text, event.created_at) == (
        with_consent,
        True,
        "store",
        "old text",
        given_at,
    )

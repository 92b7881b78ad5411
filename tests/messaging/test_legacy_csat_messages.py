"""Satisfaction-survey messages queued before they had a text (only the link's raw token in the
context) get their text from messaging migration 0003 and reach the member."""

import importlib
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.utils import timezone

from loyalty.engine.outbox import enqueue
from messaging.models import Message, Outbox
from messaging.services import deliver_due
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey
from surveys.services import create_invitation
from tests.jobs.conftest import at

pytestmark = pytest.mark.django_db

DAYTIME = at("2025-06-15 12:00")
migration = importlib.import_module("messaging.migrations.0003_csat_survey_messages_get_their_text")


def write_csat_texts():
    migration.write_csat_texts(apps, schema_editor=None)


@pytest.fixture
def queue_as_before(enrol):
    """Queue a CSAT message the way a resolved complaint did before migration 0002."""
    install_default_surveys(Survey, ComplaintCategory)

    def make(key, **member_fields):
        member = enrol(**member_fields)
        _invitation, raw = create_invitation(
            survey=Survey.objects.get(code="csat"), member=member, now=timezone.now()
        )
        enqueue(
            member_id=member.pk,
            purpose="csat_survey",
            key=key,
            context={"survey_token": raw},
            now=DAYTIME,
        )
        return member, raw

    return make


def test_a_waiting_csat_message_from_before_is_sent_in_russian_with_a_link_that_opens_the_survey(
    queue_as_before, smtp_server, client, settings
):
    member, raw = queue_as_before("csat:1", email="olga@example.com", language="ru")

    write_csat_texts()

    assert deliver_due(now=DAYTIME) == {"sent": 1}
    [mail] = smtp_server.messages
    link = f"{settings.SITE_URL.rstrip('/')}/s/{raw}/"
    assert (mail["To"], mail["Subject"]) == ("olga@example.com", "Как мы справились?")
    assert mail.get_content().strip() == f"Мы решили ваш вопрос. Насколько вы довольны? {link}"
    log = Message.objects.get(member=member)
    assert (log.purpose, log.status, log.language) == ("csat_survey", "sent", "ru")
    assert client.get(urlsplit(link).path).status_code == 200


def test_an_english_speakers_csat_message_from_before_is_written_in_english(
    queue_as_before, smtp_server, settings
):
    _member, raw = queue_as_before("csat:2", email="john@example.com", language="en")

    write_csat_texts()

    assert deliver_due(now=DAYTIME) == {"sent": 1}
    [mail] = smtp_server.messages
    assert mail["Subject"] == "How did we do?"
    assert mail.get_content().strip() == (
        "We have resolved your request. How satisfied are you? "
        f"{settings.SITE_URL.rstrip('/')}/s/{raw}/"
    )


def test_a_csat_message_given_up_for_its_empty_text_is_queued_again_and_sent(
    queue_as_before, smtp_server
):
    member, _raw = queue_as_before("csat:3", email="anna@example.com", language="ru")
    assert deliver_due(now=DAYTIME) == {"failed": 1}  # what the renderer does without a text
    assert Outbox.objects.get(key="csat:3").status == "failed"

    write_csat_texts()

    assert Outbox.objects.get(key="csat:3").attempts == 0
    assert deliver_due(now=DAYTIME) == {"sent": 1}
    assert [envelope.rcpt_tos for envelope in smtp_server.envelopes] == [["anna@example.com"]]
    statuses = list(Message.objects.filter(member=member).order_by("id").values_list("status"))
    assert statuses == [("failed",), ("sent",)]


def test_messages_with_their_own_text_and_sent_ones_are_left_as_they_are(
    queue_as_before, enrol, smtp_server
):
    queue_as_before("csat:4", email="sent@example.com")
    assert deliver_due(now=DAYTIME) == {"failed": 1}
    Outbox.objects.filter(key="csat:4").update(status="done")  # handled some other way
    current = enrol(email="new@example.com")
    context = {"subject": "Свой заголовок", "text": "Свой текст", "survey_url": "x"}
    enqueue(member_id=current.pk, purpose="csat_survey", key="csat:5", context=context, now=DAYTIME)
    before = list(Outbox.objects.order_by("key").values("key", "status", "context", "attempts"))

    write_csat_texts()
    write_csat_texts()  # and running it again changes nothing either

    after = list(Outbox.objects.order_by("key").values("key", "status", "context", "attempts"))
    assert after == before

"""Every kind of message has a text in every language and channel, and one that cannot be sent
never holds up the others."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.outbox import enqueue
from messaging import services
from messaging.defaults import DEFAULT_TEXTS
from messaging.models import Channel, Message, MessageTemplate, MessagingSettings, Outbox, Purpose
from messaging.services import MAX_ATTEMPTS, deliver_due, message_fields, render
from surveys.messages import survey_message, survey_url
from tests.jobs.conftest import MSK, at
from tests.messaging.conftest import _free_port

DAYTIME = at("2025-06-15 12:00")
LANGUAGES = [code for code, _name in settings.LANGUAGES]
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
# What a variable the context lacks renders as while these tests run (silently "" otherwise).
UNFILLED = "UNFILLED-FIELD"


def _survey(kind, reminder=False):
    return lambda language: survey_message(
        language, survey_url("t0k3n"), kind=kind, reminder=reminder
    )


def _campaign(language):
    if language == "en":
        return {"subject": "Double points at the weekend", "text": "Double points on Saturday."}
    return {"subject": "Двойные баллы в выходные", "text": "В субботу баллы начисляются вдвойне."}


# Every kind of message, with the context its producer writes (as JSON stores it): the jobs'
# SQL, the services' enqueue calls, the campaign's and the surveys' own texts.
KINDS = {
    "expiry_reminder": (
        Purpose.EXPIRY_REMINDER,
        lambda language: {"points": 120, "expires_at": "2025-07-01T00:00:00+03:00"},
    ),
    "birthday_offer": (
        Purpose.BIRTHDAY_OFFER,
        lambda language: {"points": 200, "expires_at": "2025-07-15T09:00:00+03:00"},
    ),
    "points_available": (Purpose.POINTS_AVAILABLE, lambda language: {"points": 45}),
    "referral_reward": (Purpose.REFERRAL_REWARD, lambda language: {"points": 300}),
    "membership_joined": (
        Purpose.MEMBERSHIP_JOINED,
        lambda language: {"plan": "Plus", "period_end": "2025-07-15T12:00:00+03:00"},
    ),
    "membership_renewed": (
        Purpose.MEMBERSHIP_RENEWED,
        lambda language: {"plan": "Plus", "period_end": "2025-08-14 12:00:00+03"},
    ),
    "membership_lapsed": (Purpose.MEMBERSHIP_LAPSED, lambda language: {"plan": "Plus"}),
    "campaign": (Purpose.CAMPAIGN, _campaign),
    "nps_survey": (Purpose.SURVEY, _survey("nps")),
    "nps_reminder": (Purpose.SURVEY, _survey("nps", reminder=True)),
    "churn_survey": (Purpose.SURVEY, _survey("churn")),
    "csat_survey": (Purpose.CSAT_SURVEY, _survey("csat")),
    "sign_in_link": (
        Purpose.SIGN_IN_LINK,
        lambda language: {
            "link": "http://localhost:8000/me/in/t0k3n/",
            "expires_at": "2025-06-15T12:15:00+03:00",
            "channel": "email",
        },
    ),
}


def test_every_purpose_has_a_built_in_text_in_every_language():
    assert set(DEFAULT_TEXTS) == {(purpose, lang) for purpose in Purpose for lang in LANGUAGES}
    assert {purpose for purpose, _context in KINDS.values()} == set(Purpose)


@pytest.mark.parametrize("channel", Channel.values)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language_and_channel(
    kind, language, channel, enrol, monkeypatch
):
    monkeypatch.setattr(services._engine, "string_if_invalid", UNFILLED)
    member = enrol(language=language, first_name="Анна" if language == "ru" else "Anna")
    purpose, context = KINDS[kind]

    subject, body = render(
        purpose, channel, language, message_fields(member, context(language), DAYTIME), MSK
    )

    texts = [body, subject] if channel == Channel.EMAIL else [body]
    for text in texts:
        assert text.strip()
        assert UNFILLED not in text
        assert not re.search(r"\{\{|\{%|%\(|\}\}", text), text
        if language == "ru":
            assert CYRILLIC.search(text), text
        else:
            assert not CYRILLIC.search(text), text


def test_a_purpose_without_a_text_cannot_be_queued(enrol):
    member = enrol()

    with pytest.raises(ValueError, match="nonsense"):
        enqueue(member_id=member.pk, purpose="nonsense", key="k", now=DAYTIME)
    # The jobs that insert outbox rows in SQL meet the same list in the database.
    with pytest.raises(IntegrityError), transaction.atomic():
        Outbox.objects.create(
            member=member, purpose="nonsense", key="k", not_before=DAYTIME, created_at=DAYTIME
        )
    assert Outbox.objects.count() == 0


@pytest.fixture
def complainant(enrol):
    """A Russian-speaking member, with the default surveys and complaint categories installed."""
    from surveys.defaults import install_default_surveys
    from surveys.models import ComplaintCategory, Survey

    install_default_surveys(Survey, ComplaintCategory)
    return enrol(first_name="Анна", email="anna@example.com")


def test_a_resolved_complaint_asks_the_member_in_russian_and_it_is_sent(
    complainant, support, smtp_server
):
    from surveys.models import ComplaintCategory
    from surveys.services import open_complaint, resolve_complaint

    member = complainant

    case = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="service"),
        subject="Нагрубили на кассе",
        source="phone",
        store=member.enrolled_store,
        staff=support,
        now=DAYTIME,
    )
    resolve_complaint(complaint_id=case.pk, staff=support, resolution="Извинились", now=DAYTIME)

    assert deliver_due(now=DAYTIME) == {"sent": 1}
    [received] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]
    assert received["Subject"] == "Как мы справились?"
    text = received.get_content()
    assert text.startswith("Мы решили ваш вопрос. Насколько вы довольны? http")
    assert "/s/" in text
    log = Message.objects.get(member=member)
    assert (log.purpose, log.status, log.language) == ("csat_survey", "sent", "ru")


def test_one_broken_message_fails_with_its_reason_and_the_others_are_sent(
    enrol, smtp_server, client_as
):
    members = [enrol(email=f"m{n}@example.com") for n in range(4)]
    # A merchant's template with a syntax error, and a row whose context lacks its text (the CSAT
    # rows queued before they carried one get it from messaging migration 0003).
    MessageTemplate.objects.create(
        purpose="referral_reward", channel="email", language="ru", subject="Баллы", body="{% if %}"
    )
    enqueue(
        member_id=members[0].pk,
        purpose="points_available",
        key="a",
        context={"points": 5},
        now=DAYTIME,
    )
    enqueue(
        member_id=members[1].pk,
        purpose="referral_reward",
        key="b",
        context={"points": 300},
        now=DAYTIME,
    )
    enqueue(
        member_id=members[2].pk,
        purpose="csat_survey",
        key="c",
        context={},
        now=DAYTIME,
    )
    enqueue(
        member_id=members[3].pk,
        purpose="points_available",
        key="d",
        context={"points": 7},
        now=DAYTIME,
    )

    assert deliver_due(now=DAYTIME) == {"sent": 2, "failed": 2}

    assert sorted(envelope.rcpt_tos[0] for envelope in smtp_server.envelopes) == [
        "m0@example.com",
        "m3@example.com",
    ]
    statuses = dict(Outbox.objects.values_list("key", "status"))
    assert statuses == {"a": "done", "b": "failed", "c": "failed", "d": "done"}
    broken = Message.objects.get(member=members[1])
    assert (broken.status, broken.reason, broken.address) == (
        "failed",
        "bad_text",
        "m1@example.com",
    )
    assert "if" in broken.error
    empty = Message.objects.get(member=members[2])
    assert (empty.status, empty.reason, empty.error) == (
        "failed",
        "bad_text",
        "the message text is empty",
    )
    # Given up for good: a later round does not try them again.
    assert deliver_due(now=DAYTIME + timedelta(days=1)) == {}
    page = client_as("admin").get(
        reverse("messaging:member-messages", args=[members[1].card_number])
    )
    assert "Не удалось составить текст сообщения" in page.content.decode()


def test_an_unreachable_mail_server_keeps_the_message_until_it_is_back(enrol, settings):
    from aiosmtpd.controller import Controller

    from tests.messaging.conftest import SmtpSink

    port = _free_port()  # nothing listens there yet
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    member = enrol(email="olga@example.com")
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 5}, now=DAYTIME
    )

    moment = DAYTIME
    for _round in range(MAX_ATTEMPTS + 2):
        assert deliver_due(now=moment) == {"failed": 1}
        moment += timedelta(hours=1)

    item = Outbox.objects.get()
    assert (item.status, item.attempts) == ("pending", MAX_ATTEMPTS + 2)
    assert item.not_before == moment  # the last wait is the longest: an hour
    assert "refused" in Message.objects.filter(status="failed").first().error.lower()

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert deliver_due(now=moment) == {"sent": 1}
    finally:
        controller.stop()
    assert [envelope.rcpt_tos for envelope in sink.envelopes] == [["olga@example.com"]]
    assert Outbox.objects.get().status == "done"
    assert Message.objects.filter(status="sent").count() == 1


class RefusingSink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such mailbox"


def test_a_recipient_the_mail_server_refuses_is_given_up_at_once(enrol, settings):
    from aiosmtpd.controller import Controller

    port = _free_port()
    controller = Controller(RefusingSink(), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    member = enrol(email="nobody@example.com")
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 5}, now=DAYTIME
    )
    try:
        assert deliver_due(now=DAYTIME) == {"failed": 1}
    finally:
        controller.stop()

    assert Outbox.objects.get().status == "failed"
    log = Message.objects.get()
    assert (log.status, log.reason) == ("failed", "error")
    assert "No such mailbox" in log.error
    assert issubclass(smtplib.SMTPRecipientsRefused, OSError)  # yet it is not retried


def test_a_worker_delivers_one_message_of_every_kind_to_a_real_smtp_server(
    celery_worker, enrol, smtp_server
):
    from messaging.tasks import deliver_messages

    # The worker sends at the real time of day: no quiet hours for this test.
    MessagingSettings.objects.update_or_create(
        id=1, defaults={"quiet_from": "00:00", "quiet_until": "00:00"}
    )
    now = timezone.now()
    expected = {}
    for n, (kind, (purpose, context)) in enumerate(KINDS.items()):
        for language in LANGUAGES:
            address = f"{kind}.{language}@example.com"
            member = enrol(email=address, language=language, first_name=f"Member{n}")
            enqueue(
                member_id=member.pk,
                purpose=purpose,
                key=f"{kind}:{language}",
                context=context(language),
                now=now,
            )
            expected[address] = language
    worker = celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(settings.EMAIL_PORT)})

    deliver_messages.apply_async(queue=worker.queues[0])

    worker.wait_for(
        lambda: not Outbox.objects.filter(status="pending").exists(),
        "the worker to deliver the outbox",
        seconds=60,
    )
    assert Outbox.objects.filter(status="done").count() == len(KINDS) * len(LANGUAGES)
    received = {}
    for envelope, message in zip(smtp_server.envelopes, smtp_server.messages, strict=True):
        [address] = envelope.rcpt_tos
        received[address] = message["Subject"]
    assert set(received) == set(expected)
    for address, subject in received.items():
        assert subject.strip()
        assert bool(CYRILLIC.search(subject)) == (expected[address] == "ru"), (address, subject)
    assert Message.objects.filter(status="sent").count() == len(expected)


def test_a_message_that_trips_an_unexpected_error_waits_and_the_others_go(enrol, stores, sms_sent):
    from loyalty.models import Store
    from members.models import Member

    good = enrol()
    odd = enrol()
    Member.objects.filter(pk=odd.pk).update(enrolled_store=stores["SPB-01"])
    # A time zone the validators would refuse, written straight into the row.
    Store.objects.filter(code="SPB-01").update(time_zone="Mars/Olympus")
    for member in (odd, good):
        enqueue(
            member_id=member.pk,
            purpose="points_available",
            key=f"k{member.pk}",
            context={"points": 5},
            now=DAYTIME,
        )

    assert deliver_due(now=DAYTIME) == {"sent": 1, "failed": 1}

    assert [sms["phone"] for sms in sms_sent] == [str(good.phone)]
    item = Outbox.objects.get(member=odd)
    assert (item.status, item.attempts, item.not_before) == (
        "pending",
        1,
        DAYTIME + timedelta(minutes=2),
    )
    log = Message.objects.get(member=odd)
    assert (log.status, log.reason) == ("failed", "error")
    assert "Mars/Olympus" in log.error

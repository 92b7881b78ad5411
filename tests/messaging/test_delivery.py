"""Delivery: real SMTP, SMS backend, consent, quiet hours, frequency cap, retries, the log."""

from datetime import date, timedelta

import pytest

from loyalty.engine.outbox import enqueue
from messaging.models import Message, MessageTemplate, MessagingSettings, Outbox
from messaging.services import LEASE, MAX_ATTEMPTS, deliver_due
from tests.jobs.conftest import at

DAYTIME = at("2025-06-15 12:00")


def campaign(member, n, now=DAYTIME):
    enqueue(
        member_id=member.pk,
        purpose="campaign",
        key=f"campaign:{n}:{member.pk}",
        context={"subject": f"Offer {n}", "text": f"Offer number {n}"},
        now=now,
    )


def test_birthday_email_reaches_a_real_smtp_server_in_english(run, enrol, smtp_server):
    member = enrol(
        birth_date=date(1990, 6, 15), email="anna@example.com", language="en", first_name="Anna"
    )
    run("birthday_offers", at("2025-06-15 09:00"))

    counts = deliver_due(now=DAYTIME)

    assert counts == {"sent": 1}
    [received] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]
    assert received["Subject"] == "Happy birthday! 200 points for you"
    assert received.get_content().replace("\r\n", "\n").strip() == (
        "Anna, happy birthday! Here are 200 points, valid until 15 July.\nYour balance: 200 points."
    )
    log = Message.objects.get(member=member)
    assert (log.status, log.channel, log.address, log.purpose) == (
        "sent",
        "email",
        "anna@example.com",
        "birthday_offer",
    )


def test_russian_member_gets_the_russian_text(run, enrol, smtp_server):
    enrol(birth_date=date(1990, 6, 15), email="ivan@example.com", first_name="Иван")
    run("birthday_offers", at("2025-06-15 09:00"))

    deliver_due(now=DAYTIME)

    [received] = smtp_server.messages
    assert received["Subject"].strip() == "С днём рождения! 200 баллов в подарок"
    assert (
        received.get_content()
        .strip()
        .startswith("Иван, с днём рождения! Дарим 200 баллов: они действуют до 15 июля.")
    )


def test_expiry_reminder_email_names_points_date_and_balance(run, enrol, buy, smtp_server):
    member = enrol(email="olga@example.com", language="en", first_name="Olga")
    buy(member, "1000.00", at("2024-03-01 10:00"))
    run("expiry_reminders", at("2025-02-20 10:00"))

    deliver_due(now=at("2025-02-20 12:00"))

    [received] = smtp_server.messages
    assert received["Subject"] == "30 points expire soon"
    assert "30 points on your card expire on 1 March" in received.get_content()
    assert "Your balance: 30 points." in received.get_content()


def test_a_member_without_email_gets_an_sms_through_the_backend(enrol, sms_sent):
    member = enrol(language="en")
    enqueue(
        member_id=member.pk,
        purpose="points_available",
        key="k1",
        context={"points": 30},
        now=DAYTIME,
    )

    deliver_due(now=DAYTIME)

    assert sms_sent == [{"phone": str(member.phone), "text": "30 points available. Balance: 0."}]
    log = Message.objects.get()
    assert (log.channel, log.status, log.provider_id) == ("sms", "sent", "recorded-1")


def test_a_second_delivery_round_sends_nothing_more(enrol, sms_sent):
    member = enrol()
    enqueue(
        member_id=member.pk,
        purpose="points_available",
        key="k1",
        context={"points": 30},
        now=DAYTIME,
    )
    enqueue(
        member_id=member.pk,
        purpose="points_available",
        key="k1",
        context={"points": 30},
        now=DAYTIME,
    )

    deliver_due(now=DAYTIME)
    assert deliver_due(now=DAYTIME) == {}
    assert len(sms_sent) == 1


def test_offer_to_a_member_who_withdrew_consent_is_not_sent(enrol, sms_sent):
    from members.models import Member

    member = enrol()
    campaign(member, 1)
    Member.objects.filter(pk=member.pk).update(marketing_consent=False, consent_at=None)

    assert deliver_due(now=DAYTIME) == {"suppressed": 1}
    assert sms_sent == []
    log = Message.objects.get()
    assert (log.status, log.reason) == ("suppressed", "no_consent")
    assert Outbox.objects.get().status == "done"


def test_account_messages_need_no_marketing_consent(enrol, sms_sent):
    member = enrol(consent=False)
    enqueue(
        member_id=member.pk,
        purpose="membership_lapsed",
        key="k",
        context={"plan": "Plus"},
        now=DAYTIME,
    )

    assert deliver_due(now=DAYTIME) == {"sent": 1}


def test_quiet_hours_hold_messages_until_the_morning(enrol, sms_sent):
    member = enrol()
    campaign(member, 1, now=at("2025-06-15 22:30"))

    assert deliver_due(now=at("2025-06-15 22:30")) == {"deferred": 1}
    item = Outbox.objects.get()
    assert (item.status, item.not_before, item.attempts) == ("pending", at("2025-06-16 09:00"), 0)
    assert deliver_due(now=at("2025-06-16 08:59")) == {}
    assert deliver_due(now=at("2025-06-16 09:00")) == {"sent": 1}
    assert len(sms_sent) == 1


def test_an_e_mail_goes_in_the_quiet_hours_too(enrol, smtp_server):
    member = enrol(email="anna@example.com")
    campaign(member, 1, now=at("2025-06-15 22:30"))

    assert deliver_due(now=at("2025-06-15 22:30")) == {"sent": 1}
    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]


def test_quiet_hours_are_the_members_store_time(enrol, stores, sms_sent):
    stores["MSK-01"].time_zone = "Asia/Vladivostok"  # UTC+10: 16:00 in Moscow is 23:00 there
    stores["MSK-01"].save()
    member = enrol()
    campaign(member, 1)

    assert deliver_due(now=at("2025-06-15 16:00")) == {"deferred": 1}


def test_frequency_cap_stops_the_fourth_offer_in_a_week(enrol, sms_sent):
    member = enrol()
    for n in range(4):
        campaign(member, n)

    assert deliver_due(now=DAYTIME) == {"sent": 3, "suppressed": 1}
    capped = Message.objects.get(status="suppressed")
    assert (capped.reason, capped.body) == ("frequency_cap", "")
    # Account messages are not offers: the cap does not apply to them.
    enqueue(
        member_id=member.pk, purpose="points_available", key="p", context={"points": 5}, now=DAYTIME
    )
    assert deliver_due(now=DAYTIME) == {"sent": 1}
    # A week later the member may hear from us again.
    campaign(member, 9, now=DAYTIME + timedelta(days=7))
    assert deliver_due(now=DAYTIME + timedelta(days=7)) == {"sent": 1}


def test_frequency_cap_follows_the_settings(enrol, sms_sent):
    MessagingSettings.objects.update_or_create(id=1, defaults={"cap_messages": 1, "cap_days": 30})
    member = enrol()
    campaign(member, 1)
    campaign(member, 2, now=DAYTIME + timedelta(days=20))

    assert deliver_due(now=DAYTIME) == {"sent": 1}
    assert deliver_due(now=DAYTIME + timedelta(days=20)) == {"suppressed": 1}


class FailingSms:
    def send(self, *, phone, text):
        raise ConnectionError("provider down")


def test_a_failed_send_is_logged_and_retried_later(enrol, settings, sms_sent):
    settings.SMS_BACKEND = "tests.messaging.test_delivery.FailingSms"
    member = enrol()
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 1}, now=DAYTIME
    )

    assert deliver_due(now=DAYTIME) == {"failed": 1}
    item = Outbox.objects.get()
    assert (item.status, item.attempts, item.not_before) == (
        "pending",
        1,
        DAYTIME + timedelta(minutes=2),
    )
    assert Message.objects.get().error == "provider down"

    settings.SMS_BACKEND = "messaging.sms.RecordingBackend"
    assert deliver_due(now=DAYTIME + timedelta(minutes=2)) == {"sent": 1}
    assert list(Message.objects.order_by("id").values_list("status", flat=True)) == [
        "failed",
        "sent",
    ]


class BrokenSms:
    def send(self, *, phone, text):
        raise ValueError("the provider's answer cannot be read")


def test_after_the_last_attempt_the_message_is_given_up(enrol, settings):
    settings.SMS_BACKEND = "tests.messaging.test_delivery.BrokenSms"
    member = enrol()
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 1}, now=DAYTIME
    )

    moment = DAYTIME
    for _attempt in range(MAX_ATTEMPTS):
        deliver_due(now=moment)
        moment += timedelta(hours=2)

    assert Outbox.objects.get().status == "failed"
    assert Message.objects.filter(status="failed").count() == MAX_ATTEMPTS


def test_a_leased_message_is_not_taken_twice_until_the_lease_ends(enrol, sms_sent):
    from messaging.services import _lease

    member = enrol()
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 1}, now=DAYTIME
    )
    assert len(_lease(DAYTIME, 10)) == 1  # a worker took it, then died

    assert deliver_due(now=DAYTIME + timedelta(minutes=1)) == {}
    assert deliver_due(now=DAYTIME + LEASE + timedelta(seconds=1)) == {"sent": 1}


def test_a_template_row_overrides_the_built_in_text(enrol, sms_sent):
    MessageTemplate.objects.create(
        purpose="points_available", channel="sms", language="ru", body="Баллы: {{ points }}!"
    )
    member = enrol()
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 7}, now=DAYTIME
    )

    deliver_due(now=DAYTIME)

    assert sms_sent[0]["text"] == "Баллы: 7!"


def test_blocked_members_get_nothing(enrol, sms_sent):
    from members.models import Member

    member = enrol()
    enqueue(
        member_id=member.pk, purpose="points_available", key="k", context={"points": 7}, now=DAYTIME
    )
    Member.objects.filter(pk=member.pk).update(status="blocked")

    assert deliver_due(now=DAYTIME) == {"suppressed": 1}
    assert Message.objects.get().reason == "inactive"


def test_the_deliver_task_drains_the_outbox(enrol, sms_sent, monkeypatch):
    from django.utils import timezone

    from messaging import tasks

    member = enrol()
    for n in range(3):
        enqueue(
            member_id=member.pk, purpose="points_available", key=f"k{n}", context={}, now=DAYTIME
        )
    monkeypatch.setattr(timezone, "now", lambda: DAYTIME)

    assert tasks.deliver_messages() == 3
    assert len(sms_sent) == 3


@pytest.mark.urls("tests.messaging.urls")
def test_member_message_log_is_shown_to_staff_of_the_store(client_as, enrol, sms_sent):
    member = enrol()
    campaign(member, 1)
    deliver_due(now=DAYTIME)

    response = client_as("manager").get(
        f"/operations/members/{member.card_number}/", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "Offer number 1" in text
    assert "<html" not in text  # the fragment, for the member page


@pytest.mark.urls("tests.messaging.urls")
def test_member_message_log_is_404_outside_the_managers_stores(client_as, enrol, manager_spb):
    member = enrol()
    response = client_as("manager").get(f"/operations/members/{member.card_number}/")
    assert response.status_code == 200
    from django.test import Client

    outsider = Client()
    outsider.force_login(manager_spb)
    assert outsider.get(f"/operations/members/{member.card_number}/").status_code == 404

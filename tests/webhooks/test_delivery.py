"""Webhook deliveries go to a real HTTP server: signed, retried with back-off, never sent
inside the request that caused them (issue 21, item 2)."""

import time
from datetime import timedelta

from django.utils import timezone

from webhooks.models import Delivery, Event
from webhooks.services import MAX_ATTEMPTS, backoff, deliver_due, resend_delivery, sign, verify


def test_a_delivery_is_signed_with_the_subscription_secret_and_names_its_event(
    pos, receiver, subscribe
):
    subscription = subscribe(Event.MEMBER_ENROLLED)
    card = pos.enrol()["card_number"]

    assert deliver_due() == {"delivered": 1}
    [request] = receiver.requests
    delivery = Delivery.objects.get()
    assert request["signed"] is True
    assert request["headers"]["X-Loyalty-Event"] == "member.enrolled"
    assert request["headers"]["X-Loyalty-Delivery"] == str(delivery.pk)
    assert request["body"]["id"] == f"member.enrolled:{delivery.payload['member_id']}"
    assert request["body"]["type"] == "member.enrolled"
    assert request["body"]["data"]["card_number"] == card
    assert request["body"]["data"]["store"] == "MSK-01"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert subscription.secret.startswith("whsec_")


def test_a_signature_made_with_another_secret_or_too_long_ago_is_refused():
    body = b'{"id":"x"}'
    now = int(time.time())
    good = f"t={now},v1={sign('s1', now, body)}"
    assert verify("s1", good, body) is True
    assert verify("s2", good, body) is False
    assert verify("s1", good, body + b" ") is False
    old = now - 301
    assert verify("s1", f"t={old},v1={sign('s1', old, body)}", body) is False


def test_a_500_is_tried_again_after_the_back_off_and_delivered_once(pos, receiver, subscribe):
    subscribe(Event.MEMBER_ENROLLED)
    pos.enrol()
    receiver.answers = [500]
    now = timezone.now()

    assert deliver_due(now=now) == {"retry": 1}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at == now + timedelta(minutes=1)
    assert deliver_due(now=now + timedelta(seconds=59)) == {}  # not due yet
    assert deliver_due(now=now + timedelta(minutes=1)) == {"delivered": 1}
    assert deliver_due(now=now + timedelta(minutes=10)) == {}

    assert len(receiver.requests) == 2
    assert receiver.processed == [str(delivery.pk)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


def test_the_back_off_doubles_and_is_capped():
    assert [backoff(n).total_seconds() / 60 for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert backoff(20) == timedelta(hours=6)


def test_a_receiver_that_never_answers_2xx_is_given_up_after_the_last_attempt(
    pos, receiver, subscribe
):
    subscribe(Event.MEMBER_ENROLLED)
    pos.enrol()
    receiver.answers = [503] * MAX_ATTEMPTS
    now = timezone.now()
    outcomes = []
    for _attempt in range(MAX_ATTEMPTS):
        outcomes += list(deliver_due(now=now))
        now += timedelta(hours=7)
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert deliver_due(now=now) == {}


def test_a_refused_connection_is_tried_again(pos, subscribe):
    subscribe(Event.MEMBER_ENROLLED, url="http://127.0.0.1:1/hooks")
    pos.enrol()
    assert deliver_due() == {"retry": 1}
    delivery = Delivery.objects.get()
    assert delivery.last_status_code is None
    assert delivery.last_error != ""


def test_a_resent_delivery_goes_again_with_the_same_id(pos, receiver, subscribe, admin_user_):
    subscribe(Event.MEMBER_ENROLLED)
    pos.enrol()
    assert deliver_due() == {"delivered": 1}
    delivery = Delivery.objects.get()

    resend_delivery(delivery_id=delivery.pk, staff=admin_user_)
    assert deliver_due() == {"delivered": 1}
    assert [r["headers"]["X-Loyalty-Delivery"] for r in receiver.requests] == [str(delivery.pk)] * 2
    assert receiver.processed == [str(delivery.pk)]
    assert Delivery.objects.count() == 1


def test_nothing_is_sent_inside_the_request_that_caused_the_event(
    pos, receiver, subscribe, django_capture_on_commit_callbacks
):
    subscribe(Event.PURCHASE_RECORDED)
    card = pos.enrol()["card_number"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pos.buy(card, "100.00")
    # After commit a worker is only told (a Celery message); the request itself sends nothing.
    assert len(callbacks) == 1
    assert receiver.requests == []
    assert list(Delivery.objects.values_list("status", flat=True)) == ["pending"]
    assert deliver_due() == {"delivered": 1}
    assert len(receiver.requests) == 1


def test_a_paused_subscription_gets_no_new_events(pos, receiver, subscribe):
    subscription = subscribe(Event.MEMBER_ENROLLED)
    subscription.is_active = False
    subscription.save()
    pos.enrol()
    assert Delivery.objects.count() == 0


def test_what_a_paused_subscription_had_waiting_is_not_sent(pos, receiver, subscribe):
    subscription = subscribe(Event.MEMBER_ENROLLED)
    pos.enrol()
    subscription.is_active = False
    subscription.save()
    assert deliver_due() == {"failed": 1}
    assert receiver.requests == []
    assert Delivery.objects.get().last_error == "subscription paused"

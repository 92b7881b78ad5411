"""The member's way in: a one-time link by e-mail or SMS, a session of the member's own, and the
throttle. Links come through the real outbox and a real SMTP server (aiosmtpd)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.models import AuditLog
from members.models import MemberLoginLink, MemberSession, SignInAttempt
from members.self_service import (
    FAILED_TRIES_PER_ADDRESS,
    LINKS_PER_CONTACT,
    REQUESTS_PER_ADDRESS,
    SESSION_COOKIE,
    request_sign_in_link,
    sign_in_with_link,
)
from messaging.models import Message, Outbox
from messaging.services import HIDDEN_LINK, deliver_due
from tests.own_page.conftest import LINK, at

pytestmark = pytest.mark.django_db


def _ask(client, contact):
    return client.post(reverse("me:sign-in"), {"contact": contact})


def _link_from_mail(smtp_server):
    [received] = smtp_server.messages
    return LINK.search(received.get_content()).group(0)


def _path(link):
    return link[link.index("/me/") :]


def test_a_member_asks_by_email_and_the_link_opens_their_own_page(enrol, buy, smtp_server):
    member = enrol(email="anna@example.com", first_name="Анна")
    buy(member, "1000.00", timezone.now() - timedelta(days=1))
    client = Client()

    response = _ask(client, "Anna@Example.com ")
    assert response.status_code == 302
    assert response["Location"] == reverse("me:link-sent")
    assert deliver_due() == {"sent": 1}

    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]
    assert smtp_server.messages[0]["Subject"] == "Вход в личный кабинет"
    path = _path(_link_from_mail(smtp_server))
    # Opening the link uses nothing up (mail scanners open links too): a button does.
    page = client.get(path)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "same-origin"
    assert MemberLoginLink.objects.get().used_at is None
    opened = client.post(path)
    assert opened.status_code == 302
    assert opened["Location"] == reverse("me:account")
    cookie = opened.cookies[SESSION_COOKIE]
    assert cookie["path"] == "/me/"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    account = client.get(reverse("me:account"))
    assert account.status_code == 200
    assert account.context["balance"].available == 30
    assert "Здравствуйте, Анна!" in account.content.decode()


def test_the_token_is_kept_only_as_its_hash_and_has_256_bits(enrol, smtp_server):
    enrol(email="anna@example.com")
    _ask(Client(), "anna@example.com")
    deliver_due()

    token = _link_from_mail(smtp_server).rstrip("/").rsplit("/", 1)[1]
    link = MemberLoginLink.objects.get()
    assert len(token) == 43  # token_urlsafe(32): 32 random bytes
    assert link.token_hash != token and len(link.token_hash) == 64
    assert link.expires_at - link.created_at == timedelta(minutes=15)


def test_a_link_works_only_once(enrol, smtp_server):
    enrol(email="anna@example.com")
    _ask(Client(), "anna@example.com")
    deliver_due()
    path = _path(_link_from_mail(smtp_server))

    assert Client().post(path).status_code == 302
    again = Client().post(path)

    assert again.status_code == 400
    assert SESSION_COOKIE not in again.cookies
    assert "Ask for a new one" in again.content.decode() or "Запросите" in again.content.decode()
    assert MemberSession.objects.count() == 1


def test_a_link_stops_working_after_15_minutes(enrol):
    member = enrol(email="anna@example.com")
    sent = timezone.now()
    request_sign_in_link(contact="anna@example.com", address="10.0.0.1", now=sent)
    token = _token_of_last_link()

    with pytest.raises(Exception) as expired:
        sign_in_with_link(token=token, address="10.0.0.1", now=sent + timedelta(minutes=15))
    assert expired.value.code == "sign_in_link_invalid"
    signed, _key = sign_in_with_link(
        token=token, address="10.0.0.1", now=sent + timedelta(minutes=14, seconds=59)
    )
    assert signed == member


def _token_of_last_link():
    """The raw token of the newest link, read back from its queued message."""
    row = Outbox.objects.filter(purpose="sign_in_link").order_by("-id").first()
    return row.context["link"].rstrip("/").rsplit("/", 1)[1]


def test_a_wrong_token_is_refused_and_counted(enrol):
    enrol(email="anna@example.com")

    response = Client().post(reverse("me:sign-in-link", args=["x" * 43]))

    assert response.status_code == 400
    assert SESSION_COOKIE not in response.cookies
    assert SignInAttempt.objects.filter(kind="try_ip").count() == 1
    assert MemberSession.objects.count() == 0


def test_after_ten_failed_tries_even_a_good_link_waits(enrol):
    enrol(email="anna@example.com")
    request_sign_in_link(contact="anna@example.com", address="10.0.0.9")
    good = _token_of_last_link()
    client = Client(REMOTE_ADDR="10.0.0.9")
    for n in range(FAILED_TRIES_PER_ADDRESS):
        assert client.post(reverse("me:sign-in-link", args=[f"guess{n}"])).status_code == 400

    refused = client.post(reverse("me:sign-in-link", args=[good]))

    assert refused.status_code == 429
    assert MemberLoginLink.objects.get().used_at is None
    # From another address the same link still works: the throttle is the guesser's.
    assert Client(REMOTE_ADDR="10.0.0.10").post(
        reverse("me:sign-in-link", args=[good])
    ).status_code == (302)


def test_the_request_page_answers_a_stranger_exactly_as_a_member(enrol):
    enrol(email="anna@example.com", phone="+79161234567")
    answers = []
    for contact in ["anna@example.com", "nobody@example.com", "+7 916 123-45-67", "89169999999"]:
        response = _ask(Client(REMOTE_ADDR=f"10.1.0.{len(answers)}"), contact)
        followed = Client().get(response["Location"]).content.decode()
        # The same page but for its CSRF token, which every page draws afresh.
        followed = re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+', "", followed)
        answers.append((response.status_code, response["Location"], followed))

    assert len(set(answers)) == 1
    assert Outbox.objects.filter(purpose="sign_in_link").count() == 2  # the member's two asks


def test_a_contact_gets_at_most_three_links_in_15_minutes_and_the_answer_stays_the_same(enrol):
    enrol(email="anna@example.com")
    for n in range(LINKS_PER_CONTACT + 2):
        response = _ask(Client(REMOTE_ADDR=f"10.2.0.{n}"), "anna@example.com")
        assert response.status_code == 302

    assert MemberLoginLink.objects.count() == LINKS_PER_CONTACT
    # A quarter of an hour later the contact may ask again.
    later = timezone.now() + timedelta(minutes=16)
    assert request_sign_in_link(contact="anna@example.com", address="10.2.1.1", now=later) == 1


def test_one_address_may_ask_ten_times_in_15_minutes(enrol):
    client = Client(REMOTE_ADDR="10.3.0.1")
    for n in range(REQUESTS_PER_ADDRESS):
        assert _ask(client, f"someone{n}@example.com").status_code == 302

    refused = _ask(client, "anna@example.com")

    assert refused.status_code == 429
    assert "15" in refused.content.decode()


def test_text_that_is_neither_a_phone_nor_an_email_is_refused_on_the_form(stores):
    response = _ask(Client(), "hello")

    assert response.status_code == 400
    assert response.context["form"].errors["contact"]
    assert SignInAttempt.objects.count() == 0


def test_by_phone_the_link_goes_by_sms_at_night_and_the_log_hides_it(enrol, sms_sent):
    member = enrol(email="anna@example.com", phone="+79161234567", language="en")
    night = at("2025-06-15 23:30")  # quiet hours hold SMS offers, not a link asked for now
    request_sign_in_link(contact="+7 916 123 45 67", address="10.0.0.1", now=night)

    assert deliver_due(now=night) == {"sent": 1}

    [(phone, text)] = [(sms["phone"], sms["text"]) for sms in sms_sent]
    assert phone == "+79161234567"
    assert text.startswith("Sign in to your account: http")
    assert "(until 23:45, once)" in text
    log = Message.objects.get(member=member)
    assert log.channel == "sms"
    assert log.body == f"Sign in to your account: {HIDDEN_LINK} (until 23:45, once)."
    assert Outbox.objects.get().context == {}


def test_a_blocked_card_gets_no_link_and_the_answer_is_the_same(enrol, support):
    from members.services import set_member_blocked

    member = enrol(email="anna@example.com")
    set_member_blocked(member_id=member.pk, blocked=True, reason="Потеряна", staff=support)

    response = _ask(Client(), "anna@example.com")

    assert response.status_code == 302
    assert MemberLoginLink.objects.count() == 0


def test_signing_out_ends_the_session(enrol, signed_in):
    client = signed_in(enrol(email="anna@example.com"))

    assert client.post(reverse("me:sign-out")).status_code == 302

    assert client.get(reverse("me:account"))["Location"] == reverse("me:sign-in")
    assert MemberSession.objects.get().ended_at is not None


def test_a_session_ends_after_12_hours(enrol):
    from members.self_service import member_for_session

    member = enrol(email="anna@example.com")
    request_sign_in_link(contact="anna@example.com", address="10.0.0.1")
    start = timezone.now()
    _member, key = sign_in_with_link(token=_token_of_last_link(), address="10.0.0.1", now=start)

    assert member_for_session(key, now=start + timedelta(hours=11, minutes=59)) == member
    assert member_for_session(key, now=start + timedelta(hours=12)) is None
    assert member_for_session("forged", now=start) is None


def test_staff_send_a_link_from_the_member_page(enrol, client_as, smtp_server):
    member = enrol(email="anna@example.com")

    response = client_as("support").post(
        reverse("members:member-send-link", args=[member.card_number])
    )

    assert response.status_code == 302
    assert deliver_due() == {"sent": 1}
    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]
    link = MemberLoginLink.objects.get()
    assert link.staff.username == "support"
    entry = AuditLog.objects.get(action="member.send_sign_in_link")
    assert (entry.actor.username, entry.member_id, entry.after) == (
        "support",
        member.pk,
        {"channel": "email"},
    )


def test_a_marketer_cannot_send_a_link(enrol, client_as):
    member = enrol(email="anna@example.com")

    response = client_as("marketer").post(
        reverse("members:member-send-link", args=[member.card_number])
    )

    assert response.status_code == 403
    assert MemberLoginLink.objects.count() == 0


def test_a_manager_cannot_send_a_link_to_a_member_outside_their_stores(stores, client_as):
    from members.services import enrol_member

    member = enrol_member(phone="+79165550101", email="spb@example.com", store=stores["SPB-01"])

    response = client_as("manager").post(
        reverse("members:member-send-link", args=[member.card_number])
    )

    assert response.status_code == 404
    assert MemberLoginLink.objects.count() == 0

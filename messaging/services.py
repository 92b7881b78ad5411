"""Deliver the messages the outbox holds (loyalty/engine/outbox.py writes them with the work that
causes them), with consent, quiet hours and cap.

Delivery is at least once: a worker that dies after the provider accepted a message but before
the log says "sent" leaves the outbox row leased; when the lease ends another worker sends it
again. Everything else (consent withdrawn, cap reached, quiet hours, no contact) is decided
before anything leaves.
"""

import datetime
import logging
import smtplib
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.template import Context, Engine
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime

from loyalty.engine.ledger import balance_of
from loyalty.engine.locking import lock_member
from members.models import Member
from messaging import sms
from messaging.defaults import DEFAULT_TEXTS
from messaging.models import (
    MARKETING_PURPOSES,
    ON_REQUEST_PURPOSES,
    Channel,
    Message,
    MessageTemplate,
    MessagingSettings,
    Outbox,
)

logger = logging.getLogger(__name__)

# A worker holds the rows it took for this long; one that dies lets them go after it.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# An unreachable provider is retried without end, but at least this often.
MAX_BACKOFF = timedelta(hours=1)
_engine = Engine(autoescape=False, builtins=["django.templatetags.i18n"])


def member_tz(member):
    store = member.enrolled_store
    return store.tzinfo if store is not None else timezone.get_default_timezone()


def quiet_hours_end(now, tz, rules):
    """The end of the quiet hours ``now`` falls in (member's local time), or None outside them."""
    local = now.astimezone(tz)
    start, end = rules.quiet_from, rules.quiet_until
    t = local.time()
    if start == end:
        return None
    quiet = (start <= t or t < end) if start > end else (start <= t < end)
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.datetime.combine(day, end, tzinfo=tz)


def _as_datetime(value):
    if not isinstance(value, str):
        return value
    parsed = parse_datetime(value.replace(" ", "T", 1)) if "T" not in value else None
    parsed = parsed or parse_datetime(value)
    if parsed is None:
        return value
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def message_fields(member, context, now):
    fields = {name: _as_datetime(value) for name, value in (context or {}).items()}
    fields.update(
        {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "card_number": member.card_number,
            "balance": balance_of(member, now).available,
        }
    )
    return fields


def render(purpose, channel, language, fields, tz):
    """Subject and text of a message in the member's language and time zone."""
    language = language if language in ("ru", "en") else "ru"
    row = MessageTemplate.objects.filter(
        purpose=purpose, channel=channel, language=language
    ).first()
    if row is not None:
        subject, body = row.subject, row.body
    elif (purpose, language) in DEFAULT_TEXTS:
        subject, email_body, sms_body = DEFAULT_TEXTS[(purpose, language)]
        body = email_body if channel == Channel.EMAIL else sms_body
    else:
        raise LookupError(f"no text for {purpose!r} in {language!r}")
    with translation.override(language), timezone.override(tz):
        context = Context(fields)
        return (
            _engine.from_string(subject).render(context).strip(),
            _engine.from_string(body).render(context).strip(),
        )


def _lease(now, limit):
    with transaction.atomic():
        ids = list(
            Outbox.objects.select_for_update(skip_locked=True)
            .filter(status=Outbox.Status.PENDING, not_before__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("not_before", "id")
            .values_list("id", flat=True)[:limit]
        )
        Outbox.objects.filter(pk__in=ids).update(
            leased_until=now + LEASE, attempts=F("attempts") + 1
        )
    return ids


def _close(item, status=Outbox.Status.DONE):
    fields = {"status": status, "leased_until": None}
    if item.purpose in ON_REQUEST_PURPOSES:
        fields["context"] = {}  # its sign-in link is not kept once handled
    Outbox.objects.filter(pk=item.pk).update(**fields)


# What the message log shows instead of a link that opens the member's account.
HIDDEN_LINK = "[…]"


def _logged_body(item, body):
    link = (item.context or {}).get("link")
    if item.purpose in ON_REQUEST_PURPOSES and link:
        return body.replace(link, HIDDEN_LINK)
    return body


def _channel(member, context):
    """The channel and address: the one the member asked on (``channel`` in the context) when
    they have it, else e-mail when there is one, else SMS."""
    wanted = (context or {}).get("channel")
    if wanted == Channel.SMS and member.phone:
        return Channel.SMS, str(member.phone)
    if wanted == Channel.EMAIL and member.email:
        return Channel.EMAIL, member.email
    if member.email:
        return Channel.EMAIL, member.email
    if member.phone:
        return Channel.SMS, str(member.phone)
    return None, None


def _log(item, now, status, reason="", **fields):
    return Message.objects.create(
        member_id=item.member_id,
        outbox=item,
        purpose=item.purpose,
        is_marketing=item.purpose in MARKETING_PURPOSES,
        status=status,
        reason=reason,
        created_at=now,
        **fields,
    )


def cap_reached(member_id, now, rules):
    since = now - timedelta(days=rules.cap_days)
    recent = Message.objects.filter(
        member_id=member_id,
        is_marketing=True,
        status__in=[Message.Status.SENT, Message.Status.SENDING],
        created_at__gt=since,
    ).count()
    return recent >= rules.cap_messages


class _Senders:
    """One SMTP connection and one SMS backend for a whole delivery round."""

    def __init__(self):
        self._mail = None
        self.sms = sms.get_backend()

    @property
    def mail(self):
        if self._mail is None:
            self._mail = get_connection()
            self._mail.open()
        return self._mail

    def close(self):
        if self._mail is not None:
            self._mail.close()


def _is_refused(exc):
    """Whether the provider refused this very message for good: a 5xx for its recipient or text."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _text in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def _is_transient(exc):
    """Whether the provider could not take the message just now (unreachable, busy, a 4xx, our
    login refused): sending it later can succeed, so it waits for as long as that takes."""
    return isinstance(exc, OSError) and not _is_refused(exc)


def _failed(item, now, exc, *, message=None, reason=Message.Reason.ERROR, give_up=False, **fields):
    """Log a failed attempt (on ``message`` when one is being sent) and decide what follows.

    Given up at once when ``give_up`` (a text that cannot be built fails the same way every time)
    or the provider refused the message for good; retried, with back-off, until the provider is
    back when it was unreachable or busy; retried MAX_ATTEMPTS times after any other error.
    """
    error = (str(exc) or type(exc).__name__)[:2000]
    if message is None:
        _log(item, now, Message.Status.FAILED, reason, error=error, **fields)
    else:
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.FAILED, reason=reason, error=error
        )
    if give_up or _is_refused(exc) or (item.attempts >= MAX_ATTEMPTS and not _is_transient(exc)):
        _close(item, Outbox.Status.FAILED)
    else:
        backoff = min(timedelta(minutes=2 ** min(item.attempts, 10)), MAX_BACKOFF)
        Outbox.objects.filter(pk=item.pk).update(leased_until=None, not_before=now + backoff)
    return "failed"


def _deliver(item, now, rules, senders):
    member = item.member
    marketing = item.purpose in MARKETING_PURPOSES
    Reason = Message.Reason
    if member.status != Member.Status.ACTIVE:
        _log(item, now, Message.Status.SUPPRESSED, Reason.INACTIVE)
        _close(item)
        return "suppressed"
    if marketing and not member.marketing_consent:
        _log(item, now, Message.Status.SUPPRESSED, Reason.NO_CONSENT)
        _close(item)
        return "suppressed"
    channel, address = _channel(member, item.context)
    if channel is None:
        _log(item, now, Message.Status.SUPPRESSED, Reason.NO_CONTACT)
        _close(item)
        return "suppressed"
    tz = member_tz(member)
    # Quiet hours are for the phone that buzzes at night; an e-mail waits in the inbox anyway.
    # A link the member asked for a moment ago is not held: they are waiting for it.
    quiet = channel == Channel.SMS and item.purpose not in ON_REQUEST_PURPOSES
    later = quiet_hours_end(now, tz, rules) if quiet else None
    if later is not None:
        # Not an attempt: give the lease back and wait for the morning.
        Outbox.objects.filter(pk=item.pk).update(
            not_before=later, leased_until=None, attempts=F("attempts") - 1
        )
        return "deferred"
    with transaction.atomic():
        # The member's row lock makes the cap exact when several workers deliver at once.
        lock_member(member.pk)
        if marketing and cap_reached(member.pk, now, rules):
            _log(item, now, Message.Status.SUPPRESSED, Reason.FREQUENCY_CAP)
            _close(item)
            return "suppressed"
        try:
            fields = message_fields(member, item.context, now)
            subject, body = render(item.purpose, channel, member.language, fields, tz)
            if not body:
                raise ValueError("the message text is empty")
        except DatabaseError:
            raise
        except Exception as exc:  # a broken template or context: this message only
            logger.warning("message %s has no text: %s", item.key, exc)
            return _failed(
                item,
                now,
                exc,
                reason=Reason.BAD_TEXT,
                give_up=True,
                channel=channel,
                address=address,
                language=member.language,
            )
        message = _log(
            item,
            now,
            Message.Status.SENDING,
            channel=channel,
            address=address,
            language=member.language,
            subject=subject if channel == Channel.EMAIL else "",
            body=_logged_body(item, body),
        )
    try:
        if channel == Channel.EMAIL:
            EmailMessage(
                subject=subject,
                body=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[address],
                connection=senders.mail,
            ).send()
            provider_id = ""
        else:
            provider_id = senders.sms.send(phone=address, text=body) or ""
    except Exception as exc:  # any provider failure: logged, retried with back-off
        logger.warning("message %s to %s failed: %s", item.key, address, exc)
        return _failed(item, now, exc, message=message)
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT, sent_at=timezone.now(), provider_id=provider_id
    )
    _close(item)
    return "sent"


def deliver_due(*, now=None, limit=200):
    """Send what the outbox holds that is due, at most ``limit`` messages. Returns counts."""
    now = now or timezone.now()
    ids = _lease(now, limit)
    counts = Counter()
    if not ids:
        return counts
    rules = MessagingSettings.load()
    items = (
        Outbox.objects.filter(pk__in=ids)
        .select_related("member", "member__enrolled_store")
        .order_by("id")
    )
    senders = _Senders()
    try:
        for item in items:
            try:
                outcome = _deliver(item, now, rules, senders)
            except Exception as exc:
                # Whatever went wrong with this one message must not hold up the others.
                logger.exception("message %s could not be delivered", item.key)
                outcome = _failed(item, now, exc)
            counts[outcome] += 1
    finally:
        senders.close()
    return counts

"""Send the webhook deliveries that loyalty/engine/webhook_events.py wrote with the changes that
caused them, and the integrator's subscription management.

Each delivery is a POST of ``{id, type, created, data}`` signed with the subscription's secret
(SPEC 8.2): ``X-Loyalty-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. A 2xx
answer delivers it; anything else (an error status, a refused connection, a timeout) is tried
again after 1, 2, 4 … minutes (capped at BACKOFF_CAP), and given up as failed after
MAX_ATTEMPTS. Sending is at least once: a worker that dies after the receiver got the request but
before the row says "delivered" leaves the row leased; when the lease ends another worker sends
it again, with the same ``X-Loyalty-Delivery`` id, so the receiver can drop the repeat.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import LoyaltyError
from loyalty.models import audit
from webhooks.models import Delivery, Event, Subscription, new_secret

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
# How long a POST may take; the lease is longer, so a slow receiver is never sent to twice.
TIMEOUT_SECONDS = 5
USER_AGENT = "loyalty-webhooks/1"


def lease_time():
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def backoff(attempts):
    """The wait after the ``attempts``-th failed attempt: 1 min, 2, 4, … at most BACKOFF_CAP."""
    return min(BACKOFF_FIRST * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def sign(secret, timestamp, body):
    """The ``v1`` signature of a body sent at ``timestamp`` (unix seconds): hex HMAC-SHA256 of
    ``"<timestamp>.<body>"`` with the subscription's secret."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret, header, body, *, now=None, tolerance=300):
    """A receiver's check of ``X-Loyalty-Signature`` (docs/webhooks.md shows the same): the
    signature matches and the timestamp is at most ``tolerance`` seconds old."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), parts.get("v1", ""))


def body_of(delivery):
    """The bytes POSTed: the event's id (its key), type, time and data."""
    return json.dumps(
        {
            "id": delivery.event_key,
            "type": delivery.event_type,
            "created": delivery.created_at,
            "data": delivery.payload,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def _lease(now, limit):
    """Claim up to ``limit`` due deliveries for this worker (others skip the locked rows)."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=ids).update(
            leased_until=now + lease_time(), attempts=F("attempts") + 1
        )
    return ids


def post(delivery, *, timestamp=None):
    """POST one delivery; (status code or None, error text)."""
    body = body_of(delivery)
    timestamp = int(timestamp or time.time())
    signature = sign(delivery.subscription.secret, timestamp, body)
    request = urllib.request.Request(  # noqa: S310  (the integrator's URL: http or https only)
        delivery.subscription.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Loyalty-Event": delivery.event_type,
            "X-Loyalty-Delivery": str(delivery.pk),
            "X-Loyalty-Signature": f"t={timestamp},v1={signature}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code}"
    except (OSError, ValueError) as error:  # refused, timed out, bad URL
        return None, str(error)[:500] or error.__class__.__name__


def _record_attempt(delivery, code, error, now):
    if code is not None and 200 <= code < 300:
        fields = {"status": Delivery.Status.DELIVERED, "delivered_at": now, "last_error": ""}
        outcome = "delivered"
    elif delivery.attempts >= MAX_ATTEMPTS:
        fields = {"status": Delivery.Status.FAILED, "last_error": error}
        outcome = "failed"
    else:
        fields = {"next_attempt_at": now + backoff(delivery.attempts), "last_error": error}
        outcome = "retry"
    Delivery.objects.filter(pk=delivery.pk).update(
        leased_until=None, last_status_code=code, **fields
    )
    return outcome


def deliver_due(*, now=None, limit=50):
    """Send what is due, at most ``limit`` deliveries; returns {outcome: count}."""
    now = now or timezone.now()
    ids = _lease(now, limit)
    counts = {}
    if not ids:
        return counts
    for delivery in (
        Delivery.objects.filter(pk__in=ids).select_related("subscription").order_by("id")
    ):
        if not delivery.subscription.is_active:  # paused since the event: not sent
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.FAILED, leased_until=None, last_error="subscription paused"
            )
            outcome = "failed"
        else:
            code, error = post(delivery)
            outcome = _record_attempt(delivery, code, error, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# --- Back office -----------------------------------------------------------------------------


def _clean_events(events):
    events = sorted(set(events or ()))
    unknown = [event for event in events if event not in Event.values]
    if not events or unknown:
        raise LoyaltyError(
            "invalid",
            _("Choose at least one event."),
            fields={"events": [str(_("Choose at least one known event."))]},
            status_code=400,
        )
    return events


@transaction.atomic(durable=True)
def create_subscription(*, url, events, description="", is_active=True, staff):
    """Subscribe a URL to events; its signing secret is new (shown to the administrator once)."""
    subscription = Subscription.objects.create(
        url=url,
        events=_clean_events(events),
        description=description,
        is_active=is_active,
        created_by=staff,
    )
    audit(actor=staff, action="webhook.create", obj=subscription, after={"url": url})
    return subscription


@transaction.atomic(durable=True)
def update_subscription(*, subscription_id, url, events, description="", is_active, staff):
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    before = {"url": subscription.url, "events": subscription.events}
    subscription.url = url
    subscription.events = _clean_events(events)
    subscription.description = description
    subscription.is_active = is_active
    subscription.save()
    audit(
        actor=staff,
        action="webhook.update",
        obj=subscription,
        before=before,
        after={"url": url, "events": subscription.events, "active": is_active},
    )
    return subscription


@transaction.atomic(durable=True)
def rotate_secret(*, subscription_id, staff):
    """Give a subscription a new signing secret (the old one stops at once)."""
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret"])
    audit(actor=staff, action="webhook.rotate_secret", obj=subscription)
    return subscription


@transaction.atomic(durable=True)
def delete_subscription(*, subscription_id, staff):
    """Delete a subscription with its delivery log."""
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    audit(actor=staff, action="webhook.delete", obj=subscription, before={"url": subscription.url})
    subscription.delete()


@transaction.atomic(durable=True)
def resend_delivery(*, delivery_id, staff, now=None):
    """Send a delivery again as soon as a worker is free, whatever its state (the same id, so a
    receiver that has it already can drop it). Returns the delivery."""
    now = now or timezone.now()
    delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=now, leased_until=None, attempts=0
    )
    audit(actor=staff, action="webhook.resend", obj=delivery.subscription)
    delivery.refresh_from_db()
    return delivery

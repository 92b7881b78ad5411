"""Webhook events, written in the transaction of the change that causes them (a transactional
outbox for integrators; webhooks/services.py sends them later, never inside the request).

One delivery row per active subscription that wants the event, in one ``INSERT … SELECT`` over
the subscriptions. Two forms of one rule, as the message outbox (outbox.py): ``record`` writes
one event from Python, ``insert_sql`` one event per row of a SELECT (the set-based jobs). The
event's key names it: writing it again for the same subscription does nothing (unique
constraint), so a job run twice, or a retried transaction, never duplicates a delivery.

The till must stay cheap: which events any subscription wants is read from a per-process copy
(``cached_rule``), so a purchase nobody subscribed to costs no statement at all, and one that
somebody did costs one INSERT. A new or changed subscription is seen by other processes within
RULES_CACHE_SECONDS.

Lives in the engine (not in webhooks/) because the engine's purchases, refunds, tiers and
reminders write events, and the engine imports only models and its own modules.
"""

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from loyalty.engine.db import by_dialect, dt, json_object
from loyalty.models.program import cached_rule
from webhooks.models import Delivery, Event, Subscription

logger = logging.getLogger(__name__)

_dispatchers = []

COLUMNS = (
    "subscription_id",
    "event_type",
    "event_key",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
)


def on_event(dispatch):
    """Register ``dispatch()``, called after the commit of a transaction that wrote deliveries
    (webhooks/apps.py registers the task that sends them)."""
    if dispatch not in _dispatchers:
        _dispatchers.append(dispatch)


def _load_wanted():
    wanted = set()
    for events in Subscription.objects.filter(is_active=True).values_list("events", flat=True):
        wanted.update(events or ())
    return frozenset(wanted)


def wants(event_type):
    """Whether some active subscription wants ``event_type`` (from memory, mostly)."""
    return event_type in cached_rule("webhook_events", _load_wanted)


def _check(event_type):
    if event_type not in Event.values:
        raise ValueError(f"unknown webhook event {event_type!r}: add it to webhooks.models.Event")


def insert_sql(event_type, select_sql, params, *, now):
    """One delivery per (row of ``select_sql``, active subscription wanting ``event_type``).

    ``select_sql`` selects ``event`` (what names the event within its type; the key is
    ``<type>:<event>``) and ``data`` (a JSON object, e.g. from ``db.json_object``). Returns
    (sql, params) of one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    """
    _check(event_type)  # and so a plain word, safe to write into the statement
    wanted = by_dialect(
        postgres=f"s.events @> '[\"{event_type}\"]'::jsonb",
        sqlite=f"EXISTS (SELECT 1 FROM json_each(s.events) j WHERE j.value = '{event_type}')",  # noqa: S608
    )
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({', '.join(COLUMNS)})"  # noqa: S608
        f" SELECT s.id, '{event_type}', '{event_type}:' || e.event, e.data, %s, 0, %s, '', %s"
        f" FROM ({select_sql}) e CROSS JOIN {Subscription._meta.db_table} s"
        f" WHERE s.is_active AND {wanted}"
        " ON CONFLICT DO NOTHING"
    )
    when = dt(now)
    return sql, [Delivery.Status.PENDING.value, when, when, *params]


def record(event_type, *, event, data, now=None):
    """Write one event (``event`` names it within its type, ``data`` is its JSON object) for
    every active subscription that wants it; call it inside the change's transaction. Returns
    the deliveries written (0, with no statement, when nobody wants it)."""
    _check(event_type)
    if not wants(event_type):
        return 0
    now = now or timezone.now()
    data_sql = by_dialect(postgres="CAST(%s AS jsonb)", sqlite="%s")
    sql, params = insert_sql(
        event_type,
        f"SELECT CAST(%s AS text) AS event, {data_sql} AS data",
        [str(event), json.dumps(data, cls=DjangoJSONEncoder)],
        now=now,
    )
    return execute(sql, params)


def execute(sql, params):
    """Run a statement of ``insert_sql`` and tell the workers after commit. Returns its count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.rowcount
    if written:
        transaction.on_commit(_dispatch)
    return written


def _dispatch():
    for dispatch in _dispatchers:
        try:
            dispatch()
        except Exception:  # noqa: BLE001  (the broker is down: the beat's sweep sends them)
            logger.warning("webhook deliveries left to the periodic sweep")


# --- The events: what each one's ``data`` holds (docs/webhooks.md). No personal data (names,
# phones, e-mails) leaves with an event: the card number identifies the member to the integrator.


def _money(value):
    return None if value is None else f"{value:.2f}"


def _store_code(store):
    return store.code if store is not None else None


def member_enrolled(member, *, now):
    return record(
        Event.MEMBER_ENROLLED,
        event=member.pk,
        data={
            "member_id": member.pk,
            "card_number": member.card_number,
            "store": _store_code(member.enrolled_store) if member.enrolled_store_id else None,
            "channel": member.enrolment_channel,
            "enrolled_at": member.enrolled_at,
        },
        now=now,
    )


def members_enrolled(member_ids, *, now):
    """The set-based form for a batch of members enrolled together (an import). One statement
    per batch whoever subscribed (no read of the subscriptions first: a batch costs the same
    statements every time)."""
    if not member_ids:
        return 0
    data = json_object(
        member_id="m.id",
        card_number="m.card_number",
        store="st.code",
        channel="m.enrolment_channel",
        enrolled_at="m.enrolled_at",
    )
    marks = ", ".join(["%s"] * len(member_ids))
    select = (
        f"SELECT m.id AS event, {data} AS data FROM members_member m"  # noqa: S608
        f" LEFT JOIN loyalty_store st ON st.id = m.enrolled_store_id WHERE m.id IN ({marks})"
    )
    return execute(*insert_sql(Event.MEMBER_ENROLLED, select, list(member_ids), now=now))


def purchase_recorded(purchase, *, member, store, now):
    return record(
        Event.PURCHASE_RECORDED,
        event=f"{store.pk}:{purchase.external_id}",
        data={
            "store": store.code,
            "external_id": purchase.external_id,
            "card_number": member.card_number if member is not None else None,
            "occurred_at": purchase.occurred_at,
            "amount": _money(purchase.amount),
            "discount_amount": _money(purchase.discount_amount),
            "paid_amount": _money(purchase.paid_amount),
            "redeemed_points": purchase.redeemed_points,
            "earned_points": purchase.earned_points,
            "coupon_code": purchase.coupon_code or None,
        },
        now=now,
    )


def purchase_refunded(refund, *, purchase, member, store, now):
    return record(
        Event.PURCHASE_REFUNDED,
        event=f"{store.pk}:{refund.refund_id}",
        data={
            "store": store.code,
            "refund_id": refund.refund_id,
            "external_id": purchase.external_id,
            "card_number": member.card_number if member is not None else None,
            "amount": _money(refund.amount),
            "reversed_points": refund.reversed_points,
            "returned_points": refund.returned_points,
        },
        now=now,
    )


def tier_changed(member, *, tier, previous, now):
    return record(
        Event.TIER_CHANGED,
        event=f"{member.pk}:{dt(now)}",
        data={
            "card_number": member.card_number,
            "tier": tier.code,
            "previous_tier": previous.code if previous is not None else None,
            "since": now,
        },
        now=now,
    )


def tier_changes_sql(*, low, high, as_of):
    """The set-based form for the nightly re-evaluation: every member of [low, high) whose tier
    changed in the run as of ``as_of`` (``tier_since`` is the run's moment). (sql, params)."""
    data = json_object(card_number="m.card_number", tier="t.code", since="m.tier_since")
    select = (
        f"SELECT CAST(m.id AS text) || ':' || %s AS event, {data} AS data"  # noqa: S608
        " FROM members_member m JOIN loyalty_tier t ON t.id = m.tier_id"
        " WHERE m.id >= %s AND m.id < %s AND m.tier_since = %s"
    )
    when = dt(as_of)
    return insert_sql(Event.TIER_CHANGED, select, [str(when), low, high, when], now=as_of)


def complaint_opened(complaint, *, member, now):
    if not wants(Event.COMPLAINT_OPENED):
        return 0
    store = complaint.store if complaint.store_id else None
    return record(
        Event.COMPLAINT_OPENED,
        event=complaint.pk,
        data={
            "complaint_id": complaint.pk,
            "card_number": member.card_number if member is not None else None,
            "category": complaint.category.code,
            "source": complaint.source,
            "store": _store_code(store),
            "subject": complaint.subject,
            "due_at": complaint.due_at,
        },
        now=now,
    )


def coupon_issued(coupon, *, card_number, now):
    return record(
        Event.COUPON_ISSUED, event=coupon.code, data=_coupon_data(coupon, card_number), now=now
    )


def _coupon_data(coupon, card_number):
    return {
        "code": coupon.code,
        "card_number": card_number,
        "kind": coupon.kind,
        "value": _money(coupon.value),
        "valid_from": coupon.valid_from,
        "valid_until": coupon.valid_until,
    }


def coupons_issued_sql(codes, *, now):
    """The set-based form for many coupons (a campaign's batch), by code. (sql, params)."""
    data = json_object(
        code="c.code",
        card_number="m.card_number",
        kind="c.kind",
        value="CAST(c.value AS text)",
        valid_from="c.valid_from",
        valid_until="c.valid_until",
    )
    marks = ", ".join(["%s"] * len(codes))
    select = (
        f"SELECT c.code AS event, {data} AS data FROM loyalty_coupon c"  # noqa: S608
        f" LEFT JOIN members_member m ON m.id = c.member_id WHERE c.code IN ({marks})"
    )
    return insert_sql(Event.COUPON_ISSUED, select, list(codes), now=now)

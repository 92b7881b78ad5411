"""The nightly jobs that tell members about their lots: expiry reminders and the activation of
pending points (SPEC section 6). Expiry is engine/expiry.py, birthdays engine/birthdays.py."""

from datetime import timedelta

from django.db import connection, transaction

from loyalty.engine import outbox, progress, webhook_events
from loyalty.engine.db import dt, json_object, member_ranges, new_batch
from loyalty.engine.locking import retry_on_conflict
from loyalty.models import ProgramSettings
from messaging.models import Purpose
from webhooks.models import Event

# Members per batch transaction: each batch touches their lots through the (member, expiry)
# index; 10,000 members is well under a second of work and short enough to interrupt.
BATCH_MEMBERS = 10_000
# Lots that became available longer ago than this are not announced (e.g. on the first run).
ACTIVATION_LOOKBACK = timedelta(days=2)


def _tell_members(cursor, purpose, context, batch, as_of):
    """One message per member of a batch of lot notices (``context`` sums their lots ``l``).
    Returns the messages queued."""
    cursor.execute(
        *outbox.insert_sql(
            purpose,
            f"""
            SELECT n.member_id, {context} AS context, %s || ':' || n.member_id AS event
            FROM loyalty_lotnotice n JOIN loyalty_pointslot l ON l.id = n.lot_id
            WHERE n.batch = %s
            GROUP BY n.member_id
            """,  # noqa: S608
            [batch, batch],
            now=as_of,
        )
    )
    return cursor.rowcount


@retry_on_conflict
@transaction.atomic(durable=True)
def _remind_batch(low, high, as_of, until):
    batch = new_batch()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO loyalty_lotnotice (lot_id, member_id, kind, batch, created_at)
            SELECT l.id, l.member_id, 'expiry', %s, %s
            FROM loyalty_pointslot l JOIN members_member m ON m.id = l.member_id
            WHERE l.member_id >= %s AND l.member_id < %s AND l.remaining > 0
              AND l.expires_at > %s AND l.expires_at <= %s AND l.available_from <= %s
              AND m.marketing_consent AND m.status = 'active'
            ON CONFLICT DO NOTHING
            """,
            [batch, dt(as_of), low, high, dt(as_of), dt(until), dt(as_of)],
        )
        lots = cursor.rowcount
        if not lots:
            return 0, 0
        context = json_object(points="SUM(l.remaining)", expires_at="MIN(l.expires_at)")
        messages = _tell_members(cursor, Purpose.EXPIRY_REMINDER, context, batch, as_of)
    if webhook_events.wants(Event.POINTS_EXPIRING):
        webhook_events.execute(*_expiring_events(batch, as_of))
    return lots, messages


def _expiring_events(batch, as_of):
    """The webhook form of the reminder: one ``points.expiring`` event per member of the batch."""
    data = json_object(
        card_number="m.card_number", points="SUM(l.remaining)", expires_at="MIN(l.expires_at)"
    )
    select = f"""
        SELECT %s || ':' || CAST(n.member_id AS text) AS event, {data} AS data
        FROM loyalty_lotnotice n JOIN loyalty_pointslot l ON l.id = n.lot_id
        JOIN members_member m ON m.id = n.member_id
        WHERE n.batch = %s
        GROUP BY n.member_id, m.card_number
        """  # noqa: S608
    return webhook_events.insert_sql(Event.POINTS_EXPIRING, select, [batch, batch], now=as_of)


def expiry_reminders(*, as_of, run=None, batch_size=BATCH_MEMBERS):
    """Tell members with marketing consent whose points expire within N days (default 14).

    Each lot is in one reminder only: the lots of a run form one message per member.
    """
    program = ProgramSettings.load()
    until = as_of + timedelta(days=program.expiry_reminder_days)
    for low, high in member_ranges(batch_size):
        lots, messages = _remind_batch(low, high, as_of, until)
        progress.checkpoint(run, lots + messages, lots=lots, messages=messages)


@retry_on_conflict
@transaction.atomic(durable=True)
def _activate_batch(low, high, as_of):
    batch = new_batch()
    with connection.cursor() as cursor:
        # Only lots that were pending when earned (available later than their entry) are news;
        # with pending days 0 points are available at once and nobody is told twice.
        cursor.execute(
            """
            INSERT INTO loyalty_lotnotice (lot_id, member_id, kind, batch, created_at)
            SELECT l.id, l.member_id, 'available', %s, %s
            FROM loyalty_pointslot l JOIN members_member m ON m.id = l.member_id
            WHERE l.member_id >= %s AND l.member_id < %s AND l.remaining > 0
              AND l.available_from <= %s AND l.available_from > %s AND l.expires_at > %s
              AND m.status = 'active'
              AND EXISTS (SELECT 1 FROM loyalty_ledgerentry e
                          WHERE e.lot_id = l.id AND e.created_at < l.available_from)
            ON CONFLICT DO NOTHING
            """,
            [
                batch,
                dt(as_of),
                low,
                high,
                dt(as_of),
                dt(as_of - ACTIVATION_LOOKBACK),
                dt(as_of),
            ],
        )
        lots = cursor.rowcount
        if not lots:
            return 0, 0
        context = json_object(points="SUM(l.remaining)")
        return lots, _tell_members(cursor, Purpose.POINTS_AVAILABLE, context, batch, as_of)


def activate_points(*, as_of, run=None, batch_size=BATCH_MEMBERS):
    """Notice pending lots whose return window has ended and tell their members.

    Availability itself needs no write: balances compare each lot's available-from with the
    moment they are read, so points are spendable the instant the window ends. This job records
    which lots became available (once each) and queues a message to their members.
    """
    for low, high in member_ranges(batch_size):
        lots, messages = _activate_batch(low, high, as_of)
        progress.checkpoint(run, lots + messages, lots=lots, messages=messages)

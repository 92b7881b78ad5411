"""The nightly jobs on lots and members: expiry, expiry reminders, activation of pending points,
birthday points (SPEC section 6)."""

import calendar
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from loyalty.engine import expiry, progress
from loyalty.engine.db import dt, id_ranges, json_object, member_ranges, new_batch
from loyalty.engine.ledger import credit_batch
from loyalty.engine.locking import retry_on_conflict
from loyalty.models import ProgramSettings
from members.models import Member

# Members per batch transaction: each batch touches their lots through the (member, expiry)
# index; 10,000 members is well under a second of work and short enough to interrupt.
BATCH_MEMBERS = 10_000
# Lots that became available longer ago than this are not announced (e.g. on the first run).
ACTIVATION_LOOKBACK = timedelta(days=2)

OUTBOX_COLUMNS = "(member_id, purpose, context, key, status, not_before, attempts, created_at)"


def expire_points(*, as_of, run=None, batch_size=expiry.BATCH_LOTS):
    """Expire every lot whose expiry has passed (SPEC section 3), by the existing service."""
    lots, members = expiry.expire_points(as_of=as_of, batch_lots=batch_size)
    progress.checkpoint(run, lots, lots=lots, members=members)


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
        cursor.execute(
            f"""
            INSERT INTO messaging_outbox {OUTBOX_COLUMNS}
            SELECT n.member_id, 'expiry_reminder', {context},
                   'expiry_reminder:' || %s || ':' || n.member_id, 'pending', %s, 0, %s
            FROM loyalty_lotnotice n JOIN loyalty_pointslot l ON l.id = n.lot_id
            WHERE n.batch = %s
            GROUP BY n.member_id
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [batch, dt(as_of), dt(as_of), batch],
        )
        return lots, cursor.rowcount


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
        cursor.execute(
            f"""
            INSERT INTO messaging_outbox {OUTBOX_COLUMNS}
            SELECT n.member_id, 'points_available', {context},
                   'points_available:' || %s || ':' || n.member_id, 'pending', %s, 0, %s
            FROM loyalty_lotnotice n JOIN loyalty_pointslot l ON l.id = n.lot_id
            WHERE n.batch = %s
            GROUP BY n.member_id
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [batch, dt(as_of), dt(as_of), batch],
        )
        return lots, cursor.rowcount


def activate_points(*, as_of, run=None, batch_size=BATCH_MEMBERS):
    """Notice pending lots whose return window has ended and tell their members.

    Availability itself needs no write: balances compare each lot's available-from with the
    moment they are read, so points are spendable the instant the window ends. This job records
    which lots became available (once each) and queues a message to their members.
    """
    for low, high in member_ranges(batch_size):
        lots, messages = _activate_batch(low, high, as_of)
        progress.checkpoint(run, lots + messages, lots=lots, messages=messages)


def birthday_days(today):
    """(month, day) of the birthdays kept on ``today``: 29 February on the 28th in other years."""
    days = [(today.month, today.day)]
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        days.append((2, 29))
    return days


def birthday_members(today):
    """Members with marketing consent whose birthday is ``today``.

    Answered from the member_birthday_idx expression index, whose expressions are exactly the
    SQL of these lookups (docs/benchmarks.md shows the plan): a few thousand rows of a million.
    """
    birthday = Q()
    for month, day in birthday_days(today):
        birthday |= Q(birth_date__month=month, birth_date__day=day)
    members = Member.objects.filter(birthday, marketing_consent=True, status=Member.Status.ACTIVE)
    return members.order_by().values("id")


@retry_on_conflict
@transaction.atomic(durable=True)
def _birthday_grants(low, high, today, as_of, points, expires_at):
    batch = new_batch()
    members = birthday_members(today).filter(id__gte=low, id__lt=high)
    members_sql, members_params = members.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO loyalty_birthdaygrant (member_id, year, batch, created_at)
            SELECT id, %s, %s, %s FROM ({members_sql}) AS birthday
            WHERE true  -- SQLite needs a WHERE before ON CONFLICT after a SELECT
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [today.year, batch, dt(as_of), *members_params],
        )
        if not cursor.rowcount:
            return 0
        credited = credit_batch(
            cursor,
            batch=batch,
            grants_sql="SELECT member_id, %s AS points FROM loyalty_birthdaygrant WHERE batch = %s",
            params=[points, batch],
            now=as_of,
            expires_at=expires_at,
            reason="birthday",
            job="birthday_offers",
        )
        context = json_object(points="l.points", expires_at="l.expires_at")
        cursor.execute(
            f"""
            INSERT INTO messaging_outbox {OUTBOX_COLUMNS}
            SELECT l.member_id, 'birthday_offer', {context},
                   'birthday_offer:' || %s || ':' || l.member_id, 'pending', %s, 0, %s
            FROM loyalty_pointslot l WHERE l.batch = %s
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [today.year, dt(as_of), dt(as_of), batch],
        )
        return credited


# Birthdays granted per transaction. The index finds the day's members (about 1 in 365) first,
# so a million members make one batch rather than ten sweeps of an id range.
BIRTHDAY_BATCH_MEMBERS = 10_000


def birthday_offers(*, as_of, run=None, batch_size=BIRTHDAY_BATCH_MEMBERS):
    """Members with marketing consent whose birthday is today get the birthday points, once a year.

    "Today" is the program's local date (TIME_ZONE); 29 February birthdays are kept on
    28 February in other years. The points expire N days (default 30) after they are granted.
    """
    program = ProgramSettings.load()
    if not program.birthday_points:
        return
    today = timezone.localtime(as_of).date()
    expires_at = as_of + timedelta(days=program.birthday_points_expiry_days)
    ids = list(birthday_members(today).order_by("id").values_list("id", flat=True))
    for low, high in id_ranges(ids, batch_size):
        credited = _birthday_grants(low, high, today, as_of, program.birthday_points, expires_at)
        progress.checkpoint(run, credited, members=credited)

"""Expiry: the remaining points of every lot whose expiry has passed become an expire entry.

Set-based: each batch of lots (by id range) is three statements in one transaction, so an
interrupted run leaves whole batches done or untouched, and a re-run finishes the rest. Only this
job changes lots past their expiry (purchases, refunds and adjustments never touch them), so the
job needs no member locks; the member balance update is relative and takes the row lock itself.
"""

import uuid

from django.db import connection, transaction
from django.db.models import Max, Min

from loyalty.models import PointsLot

BATCH_LOTS = 50_000  # lots per transaction: about a second of work, short enough to interrupt


# PostgreSQL does a batch in one statement (data-modifying CTEs): the lots are read once, not
# found again through the new entries, which halves the time of a large night (bench_jobs).
PG_EXPIRE_RANGE = """
WITH expired AS (
    UPDATE loyalty_pointslot l SET remaining = 0
    FROM (SELECT id, remaining FROM loyalty_pointslot
          WHERE remaining > 0 AND expires_at <= %s AND id >= %s AND id < %s FOR UPDATE) old
    WHERE l.id = old.id AND l.id >= %s AND l.id < %s  -- the range again: no scan of every lot
    RETURNING l.id, l.member_id, old.remaining, l.expires_at
), entries AS (
    INSERT INTO loyalty_ledgerentry
        (member_id, kind, account, points, lot_id, reason, job, batch, expires_at, created_at)
    SELECT member_id, 'expire', 'expired', -remaining, id, '', 'expire_points', %s,
           expires_at, %s
    FROM expired
), members AS (
    UPDATE members_member m SET points_balance = points_balance - s.points
    FROM (SELECT member_id, SUM(remaining) AS points FROM expired GROUP BY member_id) s
    WHERE m.id = s.member_id
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM expired), (SELECT COUNT(*) FROM members)
"""


def _expire_range(as_of, low, high, now):
    batch = str(uuid.uuid4())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(PG_EXPIRE_RANGE, [as_of, low, high, low, high, batch, now])
            return tuple(cursor.fetchone())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO loyalty_ledgerentry
                (member_id, kind, account, points, lot_id, reason, job, batch, expires_at,
                 created_at)
            SELECT member_id, 'expire', 'expired', -remaining, id, '', 'expire_points', %s,
                   expires_at, %s
            FROM loyalty_pointslot
            WHERE remaining > 0 AND expires_at <= %s AND id >= %s AND id < %s
            """,
            [batch, now, as_of, low, high],
        )
        expired_lots = cursor.rowcount
        if not expired_lots:
            return 0, 0
        cursor.execute(
            """
            UPDATE loyalty_pointslot SET remaining = 0
            WHERE id IN (SELECT lot_id FROM loyalty_ledgerentry WHERE batch = %s)
            """,
            [batch],
        )
        cursor.execute(
            """
            UPDATE members_member SET points_balance = points_balance + t.points
            FROM (SELECT member_id, SUM(points) AS points FROM loyalty_ledgerentry
                  WHERE batch = %s GROUP BY member_id) AS t
            WHERE members_member.id = t.member_id
            """,
            [batch],
        )
        members = cursor.rowcount
    return expired_lots, members


def expire_points(*, as_of, now=None, batch_lots=BATCH_LOTS):
    """Expire every lot whose expiry is at or before ``as_of``. Returns (lots, member updates).

    Safe to run twice (a second run finds nothing) and to interrupt (finished batches stay).
    """
    now = now or as_of
    bounds = PointsLot.objects.filter(remaining__gt=0, expires_at__lte=as_of).aggregate(
        low=Min("id"), high=Max("id")
    )
    if bounds["low"] is None:
        return 0, 0
    total_lots = total_members = 0
    low = bounds["low"]
    while low <= bounds["high"]:
        high = low + batch_lots
        with transaction.atomic(durable=True):
            lots, members = _expire_range(as_of, low, high, now)
        total_lots += lots
        total_members += members
        low = high
    return total_lots, total_members

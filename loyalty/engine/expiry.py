"""Expiry: the remaining points of every lot whose expiry has passed become an expire entry.

Set-based: each batch of lots (by id range) is three statements in one transaction, so an
interrupted run leaves whole batches done or untouched, and a re-run finishes the rest.

No lot or member is locked beforehand. Purchases and refunds only touch lots not yet expired at
their own moment, but one that took its moment just before a lot's expiry may still be writing
that lot when the job (as of just after it) reads it. The job's update therefore zeroes a lot
only if it still holds the points the job read: PostgreSQL re-checks that condition on the
lot's newest version once the writer commits, and skips a lot that changed, which the next run
expires with what it then holds. The ledger stays exact without a lock on each lot (issue 18:
FOR UPDATE wrote every lot twice). The member balance update is relative and takes the row lock
itself.
"""

from django.db import connection, transaction

from loyalty.engine import progress
from loyalty.engine.db import by_dialect, dt, new_batch
from loyalty.engine.ledger import entry_insert_sql
from loyalty.models import PointsLot

BATCH_LOTS = 50_000  # lots per transaction: about a second of work, short enough to interrupt


# PostgreSQL does a batch in one statement (data-modifying CTEs): the lots are read once, not
# found again through the new entries, which halves the time of a large night (bench_jobs).
# The expire entry of each lot a select finds with its member_id, id, remaining and expires_at.
# "l.remaining = old.remaining": the points read are the points taken (see the module's note).
EXPIRE_ENTRIES = entry_insert_sql(
    """SELECT member_id, 'expire', 'expired', -remaining, id, '', 'expire_points', %s,
           expires_at, %s"""
)

PG_EXPIRE_RANGE = f"""
WITH expired AS (
    UPDATE loyalty_pointslot l SET remaining = 0
    FROM (SELECT id, remaining FROM loyalty_pointslot
          WHERE remaining > 0 AND expires_at <= %s AND id >= %s AND id < %s) old
    WHERE l.id = old.id AND l.remaining = old.remaining
      AND l.id >= %s AND l.id < %s  -- the range again: no scan of every lot
    RETURNING l.id, l.member_id, old.remaining, l.expires_at
), entries AS (
    {EXPIRE_ENTRIES}
    FROM expired
), members AS (
    UPDATE members_member m SET points_balance = points_balance - s.points
    FROM (SELECT member_id, SUM(remaining) AS points FROM expired GROUP BY member_id) s
    WHERE m.id = s.member_id
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM expired), (SELECT COUNT(*) FROM members)
"""  # noqa: S608  (the entry INSERT is the ledger's)


def _expire_range(as_of, low, high, now):
    return by_dialect(postgres=_expire_range_pg, sqlite=_expire_range_steps)(as_of, low, high, now)


def _expire_range_pg(as_of, low, high, now):
    with connection.cursor() as cursor:
        cursor.execute(PG_EXPIRE_RANGE, [as_of, low, high, low, high, new_batch(), now])
        return tuple(cursor.fetchone())


def _expire_range_steps(as_of, low, high, now):
    """SQLite: the entries first, then the lots and members they name (no data-modifying CTE)."""
    batch = new_batch()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            {EXPIRE_ENTRIES}
            FROM loyalty_pointslot
            WHERE remaining > 0 AND expires_at <= %s AND id >= %s AND id < %s
            """,  # noqa: S608
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


def expire_points(*, as_of, now=None, run=None, batch_size=BATCH_LOTS):
    """Expire every lot whose expiry is at or before ``as_of`` (SPEC section 3): the nightly
    job. Returns (lots, member updates), which the run records once at the end.

    Safe to run twice (a second run finds nothing) and to interrupt (finished batches stay).
    """
    total_lots, total_members = _expire_all(as_of, now or as_of, batch_size)
    progress.checkpoint(run, total_lots, lots=total_lots, members=total_members)
    return total_lots, total_members


# The id bounds of the lots past expiry, found through the open-lot expiry index (as many rows as
# expire). "id + 0": min(id) and max(id) would otherwise walk the primary key from either end
# past every lot not yet expired (seconds for a one-day night at 5M lots; bench_jobs).
BOUNDS = f"""
SELECT MIN(id + 0), MAX(id + 0) FROM {PointsLot._meta.db_table}
WHERE remaining > 0 AND expires_at <= %s
"""  # noqa: S608  (the table name from the model)


def _expire_all(as_of, now, batch_size):
    with connection.cursor() as cursor:
        cursor.execute(BOUNDS, [dt(as_of)])
        low, last = cursor.fetchone()
    if low is None:
        return 0, 0
    total_lots = total_members = 0
    while low <= last:
        high = low + batch_size
        with transaction.atomic(durable=True):
            lots, members = _expire_range(as_of, low, high, now)
        total_lots += lots
        total_members += members
        low = high
    return total_lots, total_members

"""The few SQL pieces the jobs share, written once for PostgreSQL and SQLite.

Jobs work in batches by member id range: each batch is one short transaction of a few set-based
statements, so a run can be interrupted anywhere and a re-run finishes the rest (every grant has
a unique mark that makes doing it twice impossible).
"""

import uuid

from django.db import connection
from django.db.models import Max, Min

from members.models import Member


def is_postgres():
    return connection.vendor == "postgresql"


def dt(value):
    """A datetime as the database stores it (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def new_batch():
    return str(uuid.uuid4())


def minus_days(column, days):
    """SQL for the datetime ``days`` whole days (of 24 hours) before a datetime column.

    SQLite keeps datetimes as text: the result is text in the same layout, with milliseconds,
    which compares with the stored text correctly (equal instants are not "later").
    """
    days = int(days)
    if is_postgres():
        return f"({column} - interval '{days} days')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {column}, '-{days} days')"


def json_object(**fields):
    """SQL building a JSON object from column expressions: ``json_object(points="l.points")``."""
    function = "jsonb_build_object" if is_postgres() else "json_object"
    args = ", ".join(f"'{name}', {expression}" for name, expression in fields.items())
    return f"{function}({args})"


def month_day(column):
    """'MM-DD' of a date column."""
    if is_postgres():
        return f"to_char({column}, 'MM-DD')"
    return f"strftime('%%m-%%d', {column})"


def member_ranges(batch_size, queryset=None):
    """[low, high) member id ranges covering every member, ``batch_size`` ids each."""
    queryset = Member.objects.all() if queryset is None else queryset
    bounds = queryset.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return
    low = bounds["low"]
    while low <= bounds["high"]:
        yield low, low + batch_size
        low += batch_size


def id_ranges(ids, per_batch):
    """[low, high) ranges over sorted ``ids``, ``per_batch`` of them each: batches sized by the
    rows a selective query finds rather than by the width of the id space."""
    for start in range(0, len(ids), per_batch):
        chunk = ids[start : start + per_batch]
        yield chunk[0], chunk[-1] + 1


def lock_members(cursor, members_sql, params):
    """Lock the members a batch will credit, in id order (so two writers cannot deadlock).

    SQLite needs nothing: its write transaction (IMMEDIATE) already excludes every other writer.
    """
    if not is_postgres():
        return
    cursor.execute(
        f"SELECT id FROM members_member WHERE id IN (SELECT member_id FROM ({members_sql}) s) "  # noqa: S608
        "ORDER BY id FOR NO KEY UPDATE",
        params,
    )


def credit_batch(cursor, *, batch, grants_sql, params, now, expires_at, reason, job):
    """Credit bonus points to many members at once, as ``points.credit`` does for one.

    ``grants_sql`` selects (member_id, points), one row per member. Each member gets a lot, a
    bonus entry and a relative balance update; any debt is repaid from the new lot first.
    Returns the number of members credited. The caller holds the transaction.
    """
    lock_members(cursor, grants_sql, params)
    cursor.execute(
        f"""
        INSERT INTO loyalty_pointslot
            (member_id, points, remaining, available_from, expires_at, purchase_id, batch,
             created_at)
        SELECT m.id, g.points,
               CASE WHEN m.points_debt >= g.points THEN 0 ELSE g.points - m.points_debt END,
               %s, %s, NULL, %s, %s
        FROM ({grants_sql}) g JOIN members_member m ON m.id = g.member_id
        WHERE g.points > 0
        """,  # noqa: S608
        [dt(now), dt(expires_at), batch, dt(now), *params],
    )
    credited = cursor.rowcount
    if not credited:
        return 0
    cursor.execute(
        """
        INSERT INTO loyalty_ledgerentry
            (member_id, kind, account, points, lot_id, reason, job, batch, expires_at, created_at)
        SELECT member_id, 'bonus', 'bonus', points, id, %s, %s, %s, expires_at, %s
        FROM loyalty_pointslot WHERE batch = %s
        """,
        [reason, job, batch, dt(now), batch],
    )
    cursor.execute(
        """
        UPDATE members_member
        SET points_balance = points_balance + l.points,
            points_debt = points_debt - (l.points - l.remaining)
        FROM loyalty_pointslot l
        WHERE l.batch = %s AND members_member.id = l.member_id
        """,
        [batch],
    )
    return credited

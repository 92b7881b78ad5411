"""The one database module: the dialect differences (PostgreSQL and SQLite), the SQL pieces
the set-based jobs share, prepared statements and the replica router. Nothing outside this module
asks which database it runs on.

Jobs work in batches by member id range: each batch is one short transaction of a few set-based
statements, so a run can be interrupted anywhere and a re-run finishes the rest (every grant has
a unique mark that makes doing it twice impossible).

Reads that may lag a little (analytics, exports) go to a replica when one is configured: code opts
in with ``with replica_reads():``; everything else, and every write, uses the primary. Without
DATABASE_REPLICA_URL the router changes nothing.
"""

import contextlib
import contextvars
import uuid
from contextlib import contextmanager

from django.conf import settings
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


# Prepared statements

THRESHOLD = 5  # a statement is prepared at its fifth run on a connection


@contextmanager
def prepared_statements():
    """Within this block (or a view decorated with it), psycopg prepares the statements the
    connection runs a fifth time, and PostgreSQL stops parsing and planning them.

    For code whose every statement finds rows by a key (card, phone, member, receipt): the API,
    the member page. Not for searches, lists with filters, analytics or jobs, whose plans depend
    on the values: a prepared member search falls back to a generic plan that reads the whole
    members table for a rare term. Off with DB_PREPARED_STATEMENTS=false and on SQLite.
    """
    if not settings.PREPARED_STATEMENTS or connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    raw.prepare_threshold = THRESHOLD
    try:
        yield
    finally:
        raw.prepare_threshold = None  # Django's default: other code plans afresh


# The replica router

_use_replica = contextvars.ContextVar("use_replica", default=False)


@contextlib.contextmanager
def replica_reads():
    token = _use_replica.set(True)
    try:
        yield
    finally:
        _use_replica.reset(token)


def replica_alias():
    return "replica" if "replica" in settings.DATABASES else None


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _use_replica.get():
            return replica_alias()
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, **hints):
        return db == "default"

"""The outbox row: a message that must be sent, written in the transaction of the work that
causes it (messaging/services.py delivers it later, with consent, quiet hours and the cap).

Two forms of one rule: ``enqueue`` writes rows from Python, ``insert_sql`` writes one row per
row of a SELECT (the set-based jobs). Both keep the same two promises: ``key`` names the event,
so writing it again does nothing, and ``purpose`` is one of ``messaging.models.Purpose`` (any
other raises ValueError; the database refuses it too, check constraint outbox_purpose_known).
"""

import datetime

from django.utils import timezone

from loyalty.engine.db import dt
from messaging.models import Outbox, Purpose

# The columns a new row is written with; the rest (lease) start empty.
COLUMNS = (
    "member_id",
    "purpose",
    "context",
    "key",
    "status",
    "not_before",
    "attempts",
    "created_at",
)


def _check_purpose(purpose):
    if purpose not in Purpose.values:
        raise ValueError(f"unknown message purpose {purpose!r}: add it to messaging.models.Purpose")


def _plain(value):
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def new_row(*, member_id, purpose, key, context=None, now, not_before=None):
    """An unsaved outbox row (its purpose checked)."""
    _check_purpose(purpose)
    return Outbox(
        member_id=member_id,
        purpose=purpose,
        key=key,
        context={name: _plain(value) for name, value in (context or {}).items()},
        not_before=not_before or now,
        created_at=now,
    )


def enqueue(*, member_id, purpose, key, context=None, now=None, not_before=None):
    """Queue a message for a member; call it inside the transaction of the work that causes it.

    ``key`` names the event (``referral_reward:friend:17``): enqueueing it again does nothing.
    ``purpose`` is one of ``Purpose``; any other raises ValueError (it would have no text).
    """
    now = now or timezone.now()
    enqueue_many(
        [
            new_row(
                member_id=member_id,
                purpose=purpose,
                key=key,
                context=context,
                now=now,
                not_before=not_before,
            )
        ]
    )


def enqueue_many(rows):
    """Write rows of ``new_row`` in one INSERT; those whose key exists already are skipped."""
    Outbox.objects.bulk_create(rows, ignore_conflicts=True)


def insert_sql(purpose, select_sql, params, *, now):
    """The set-based form of ``enqueue``: one outbox row per row of ``select_sql``, which selects
    ``member_id``, ``context`` (a JSON object, e.g. from ``db.json_object``) and ``event`` (what
    names the event within the purpose) by those names. The key is ``<purpose>:<event>``, as
    enqueue's callers write it. The message is due at ``now``.

    Returns (sql, params) of one ``INSERT … SELECT … ON CONFLICT DO NOTHING``; the rows it wrote
    are the cursor's rowcount.
    """
    _check_purpose(purpose)  # and so a plain word, safe to write into the statement
    sql = (
        f"INSERT INTO {Outbox._meta.db_table} ({', '.join(COLUMNS)})"  # noqa: S608
        f" SELECT s.member_id, '{purpose}', s.context, '{purpose}:' || s.event, %s, %s, %s, %s"
        f" FROM ({select_sql}) s"
        " WHERE true"  # SQLite needs a WHERE before ON CONFLICT after a SELECT
        " ON CONFLICT DO NOTHING"
    )  # the table, columns and values are ours; the caller's SELECT brings its own parameters
    when = dt(now)
    status = str(Outbox._meta.get_field("status").default)
    attempts = Outbox._meta.get_field("attempts").default
    return sql, [status, when, attempts, when, *params]

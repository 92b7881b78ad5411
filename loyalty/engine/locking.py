"""Locks and retries shared by every service that changes points.

Every writer of a member's points (purchases, refunds, adjustments, jobs) locks the member's row
first, so concurrent calls on one member serialise and calls on different members never wait
for each other. Lots are only changed under their member's lock, so they need no lock of their own.
"""

import functools
import time
import weakref

from django.db import OperationalError, connection
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import Busy, LoyaltyError
from members.models import Member

RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout reached (see DATABASES OPTIONS)


def _sqlstate(exc):
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(
        getattr(cause, "diag", None), "sqlstate", None
    )


def retry_on_conflict(func, attempts=3):
    """Retry a whole service call on deadlock or serialization failure; time out into "busy"."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(attempts):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                state = _sqlstate(exc)
                if state == LOCK_NOT_AVAILABLE or (
                    "database is locked" in str(exc) and attempt == attempts - 1
                ):
                    raise Busy(_("The member is busy with another operation. Try again.")) from exc
                if state not in RETRYABLE_SQLSTATES and "database is locked" not in str(exc):
                    raise
                if attempt == attempts - 1:
                    raise Busy(_("The system is busy. Try again.")) from exc
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


def lock_member(member_id):
    """The member's row, locked until the end of the transaction (FOR NO KEY UPDATE).

    NO KEY keeps inserts of rows that reference the member (entries, lots) unblocked.
    """
    return (
        Member.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tier")
        .get(pk=member_id)
    )


def unknown_card(card_number):
    """The error for a card number no member has."""
    return LoyaltyError(
        "member_not_found",
        _("No member has card %(card)s.") % {"card": card_number},
        fields={"card_number": [str(_("Unknown card number."))]},
        status_code=404,
    )


def member_by_card(card_number, *, lock=False):
    """The member behind a card (None if unknown), its tier from the per-process ladder rather
    than a join; with ``lock``, its row locked until the end of the transaction.

    Hand-written because every purchase and look-up runs it: the ORM spent more time building
    this statement than PostgreSQL spends answering it.
    """
    return _member_where("card_number", card_number, lock=lock)


def member_with_balance(column, value, now):
    """The member whose ``column`` (card_number or phone) equals ``value``, with its balance as
    of ``now`` in ``.balance``, or None: a look-up at the counter in one statement.

    The answer is a ``MemberRead`` (the row's fields as attributes, the phone as the E.164 text
    stored), not a model instance: a look-up only shows the member, and building a ``Member``
    (with the phone parsed back by phonenumbers) cost 0.1 ms of the look-up's 0.8 ms."""
    from loyalty.engine import ledger as points
    from loyalty.models import PointsLot, Tier

    if column not in ("card_number", "phone"):  # a name in SQL, never user input
        raise ValueError(f"no look-up by {column}")
    sums, params = points.lot_sums_columns(now, "l")
    select = (
        f"SELECT {MEMBER_COLUMNS_OF_M}, {sums} FROM {Member._meta.db_table} m"  # noqa: S608
        f" LEFT JOIN {PointsLot._meta.db_table} l ON l.member_id = m.id AND l.remaining > 0"
        f" WHERE m.{column} = %s GROUP BY m.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(select, [*params, value])
        row = cursor.fetchone()
    if row is None:
        return None
    member = MemberRead()
    row = _convert_member_row(row, keep_phone=True)
    width = len(MEMBER_ATTNAMES)
    member.__dict__.update(zip(MEMBER_ATTNAMES, row[:width], strict=True))
    available, pending = row[width:]
    member.balance = points.Balance(int(available) - member.points_debt, int(pending))
    member.tier = next((tier for tier in Tier.ladder() if tier.pk == member.tier_id), None)
    return member


class MemberRead:
    """A member's row read for showing: ``Member``'s field attnames as attributes, ``phone`` as
    the stored text (E.164, or empty), ``tier`` from the per-process ladder, ``balance``."""


# Named rather than "*": the statement is prepared once per connection, and a prepared
# "SELECT *" fails in the processes still running while a migration adds a column.
MEMBER_FIELDS = Member._meta.concrete_fields
MEMBER_COLUMNS = ", ".join(f'"{field.column}"' for field in MEMBER_FIELDS)
MEMBER_COLUMNS_OF_M = ", ".join(f'm."{field.column}"' for field in MEMBER_FIELDS)
MEMBER_ATTNAMES = [field.attname for field in MEMBER_FIELDS]


# Per backend operations object (one per connection, so per thread), as the ORM asks them.
_member_converters = weakref.WeakKeyDictionary()


def _converters_of_member_columns(keep_phone):
    """[(column index, column, converters)] for the member's columns that need converting on
    the connection in use: SQLite's booleans and times, the phone number's own (not with
    ``keep_phone``: the stored E.164 text is what a look-up shows)."""
    ops = connection.ops
    by_ops = _member_converters.get(ops)
    if by_ops is None:
        by_ops = _member_converters[ops] = {}
    found = by_ops.get(keep_phone)
    if found is None:
        found = []
        for index, field in enumerate(MEMBER_FIELDS):
            column = field.get_col(Member._meta.db_table)
            converters = ops.get_db_converters(column)
            if not (keep_phone and field.attname == "phone"):
                converters = converters + column.get_db_converters(connection)
            if converters:
                found.append((index, column, converters))
        by_ops[keep_phone] = found
    return found


def _convert_member_row(row, *, keep_phone=False):
    """What the ORM does to a member row it reads (the phone left as text with ``keep_phone``)."""
    row = list(row)
    for index, column, converters in _converters_of_member_columns(keep_phone):
        for converter in converters:
            row[index] = converter(row[index], column, connection)
    return row


def _member_where(column, value, *, lock=False):
    """The member whose ``column`` equals ``value``, or None; read with a plain cursor and
    built with ``Member.from_db``, as the ORM would (``raw()`` cost more to set up each time
    than PostgreSQL took to answer)."""
    from loyalty.models import Tier

    suffix = ""
    if lock and connection.features.has_select_for_no_key_update:
        suffix = " FOR NO KEY UPDATE"
    select = f"SELECT {MEMBER_COLUMNS} FROM {Member._meta.db_table} WHERE {column} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(select + suffix, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    member = Member.from_db(connection.alias, MEMBER_ATTNAMES, _convert_member_row(row))
    tier = next((tier for tier in Tier.ladder() if tier.pk == member.tier_id), None)
    if tier is not None:
        member.tier = tier
    return member


def lock_buyer(card_number):
    """Lock the member behind a card, following a merged card on to the member it was merged
    into. Raises ``member_not_found``."""
    member = member_by_card(card_number, lock=True)
    if member is None:
        raise unknown_card(card_number)
    if member.merged_into_id:
        member = lock_member(member.merged_into_id)
    return member


def lock_members(member_ids):
    """Several members' rows, locked in primary-key order so two callers cannot deadlock."""
    return list(
        Member.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted(member_ids))
        .order_by("pk")
    )

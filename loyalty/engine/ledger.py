"""Moving points in and out of lots: the private steps every points service shares.

None of these opens a transaction: the calling service holds one and the member's row lock.
Each returns what it changed so the caller can update the member's cached sums once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import connection, models
from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.expressions import DatabaseDefault
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from loyalty.engine.db import by_dialect, dt, lock_members
from loyalty.engine.errors import LoyaltyError
from loyalty.models import ACCOUNT_OF_KIND, EntryKind, LedgerEntry, LotAllocation, PointsLot
from members.models import Member

logger = logging.getLogger(__name__)


def floor_points(value):
    """Points are whole: always rounded down (the merchant never gives away a fraction)."""
    return int(Decimal(value).to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int

    @property
    def total(self):
        return self.available + self.pending

    def as_dict(self):
        return {"available": self.available, "pending": self.pending}


def balance_of(member, now):
    """Available and pending points from the lots, as of ``now`` (expired lots count for nothing).

    Debt (points reversed after they were spent) is taken from what is available.
    """
    available, pending = open_lot_sums(member.pk, now)
    return Balance(available=available - member.points_debt, pending=pending)


def open_lot_sums(member_id, now):
    """(available, pending) points left in a member's lots as of ``now``, debt not taken off.

    Hand-written: the ORM took longer to build the statement than PostgreSQL to answer it from
    the (member_id, remaining > 0) index.
    """
    sums, params = lot_sums_columns(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sums} FROM {PointsLot._meta.db_table}"  # noqa: S608  (names from the model)
            " WHERE member_id = %s AND remaining > 0",
            [*params, member_id],
        )
        available, pending = cursor.fetchone()
    return int(available), int(pending)


def lot_sums_columns(now, table=""):
    """The two sums of ``open_lot_sums`` as select-list columns over lots (named ``table``)
    with points left, and their parameters."""
    t = f"{table}." if table else ""
    when = connection.ops.adapt_datetimefield_value(now)
    return (
        f"COALESCE(SUM(CASE WHEN {t}available_from <= %s AND {t}expires_at > %s"
        f" THEN {t}remaining ELSE 0 END), 0),"
        f" COALESCE(SUM(CASE WHEN {t}available_from > %s THEN {t}remaining ELSE 0 END), 0)",
        [when, when, when],
    )


# A purchase adds up at most this many of the member's open lots (nearly every member has a
# handful); a member with more takes its balance from the cached sum (``balance_from_cache``).
OPEN_LOTS_READ = 64


def capped_lot_sums_sql(member_id, now):
    """(lots read, available, pending) over at most OPEN_LOTS_READ open lots of a member: the
    sums are whole when fewer were read."""
    sums, params = lot_sums_columns(now)
    return (
        f"SELECT COUNT(*), {sums} FROM (SELECT remaining, available_from, expires_at"  # noqa: S608
        f" FROM {PointsLot._meta.db_table} WHERE member_id = %s AND remaining > 0 LIMIT %s) lots",
        [*params, member_id, OPEN_LOTS_READ],
    )


def balance_from_cache(member, now):
    """The balance of a member with many open lots, from its row (locked by the caller, or read
    just now): the cached ``points_balance`` (everything its lots hold, less debt) less the
    points not yet available at ``now`` (pending) and those expired by ``now`` that the expiry
    job has not taken yet. Two index range scans that find nothing on most days, where adding
    up the open lots reads every one of them: thousands for a member who buys every day.
    """
    lots = PointsLot._meta.db_table
    when = connection.ops.adapt_datetimefield_value(now)
    held = (
        f"(SELECT COALESCE(SUM(remaining), 0) FROM {lots}"  # noqa: S608  (names from the model)
        " WHERE member_id = %s AND remaining > 0 AND {})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {held.format('available_from > %s')}, {held.format('expires_at <= %s')}",
            [member.pk, when, member.pk, when],
        )
        pending, lapsed = cursor.fetchone()
    return Balance(
        available=member.points_balance - int(pending) - int(lapsed), pending=int(pending)
    )


def open_lots(member, now, *, include_pending=False):
    """Lots with points left, soonest expiry first: the order in which points are spent."""
    lots = PointsLot.objects.filter(member_id=member.pk, remaining__gt=0, expires_at__gt=now)
    if not include_pending:
        lots = lots.filter(available_from__lte=now)
    return lots.order_by("expires_at", "id")


def new_entry(member, kind, points, now, **fields):
    """An unsaved ledger entry of ``kind`` (its contra account follows from the kind)."""
    return LedgerEntry(
        member_id=member.pk,
        kind=kind,
        account=ACCOUNT_OF_KIND[kind],
        points=points,
        created_at=now,
        **fields,
    )


def add_entry(member, kind, points, now, **fields):
    entry = new_entry(member, kind, points, now, **fields)
    entry.save(force_insert=True)
    return entry


def credit(member, *, points, kind, now, available_from, expires_at, **entry_fields):
    """Add points as a new lot; any debt is repaid from it first. Returns (entry, lot, repaid)."""
    entry, lot, repaid = new_credit(
        member,
        points=points,
        kind=kind,
        now=now,
        available_from=available_from,
        expires_at=expires_at,
        **entry_fields,
    )
    by_dialect(postgres=insert_lot_and_entry, sqlite=save_lot_and_entry)(lot, entry)
    return entry, lot, repaid


def new_credit(member, *, points, kind, now, available_from, expires_at, **entry_fields):
    """``credit``'s lot and entry, not saved yet, and the member's sums changed in memory
    (for a caller that writes them with other rows). Returns (entry, lot, repaid)."""
    repaid = min(points, member.points_debt)
    lot = PointsLot(
        member_id=member.pk,
        points=points,
        remaining=points - repaid,
        available_from=available_from,
        expires_at=expires_at,
        purchase=entry_fields.get("purchase"),
    )
    entry = new_entry(member, kind, points, now, expires_at=expires_at, **entry_fields)
    entry.lot = lot
    member.points_debt -= repaid
    member.points_balance += points
    return entry, lot, repaid


def save_lot_and_entry(lot, entry):
    """A lot and the entry that points at it, one save each."""
    lot.save(force_insert=True)
    entry.lot = lot
    entry.save(force_insert=True)


def grant_bonus(member, *, points, now, program, kind=EntryKind.BONUS, **entry_fields):
    """Credit points available at once that expire after the program's expiry days (a
    referral, a membership's bonus, a staff adjustment): ``credit`` with the bonus lot window."""
    return credit(
        member,
        points=points,
        kind=kind,
        now=now,
        available_from=now,
        expires_at=lot_expiry(program, now),
        **entry_fields,
    )


# model -> [(field, quoted column, how its value is adapted)] of the columns an INSERT writes,
# read once per process.
_insert_fields = {}

# Fields whose PostgreSQL adaptation is the identity for a value of the listed types (Django's
# get_db_prep_save returns such a value unchanged on PostgreSQL): a receipt's 21 columns went
# through the field machinery one by one, about a tenth of a purchase's Python time.
_PLAIN = {
    models.IntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigIntegerField: (int,),
    models.BooleanField: (bool,),
    models.DecimalField: (Decimal,),
    models.DateTimeField: (datetime,),
    models.CharField: (str,),
    models.TextField: (str,),
    models.ForeignKey: (int,),
}


def _fields_to_insert(model):
    found = _insert_fields.get(model)
    if found is None:
        found = _insert_fields[model] = [
            (field, connection.ops.quote_name(field.column), _PLAIN.get(type(field)))
            for field in model._meta.local_concrete_fields
            if not (field.primary_key or field.generated)
        ]
    return found


def _adapted(field, value, plain):
    if value is None:
        return None
    kind = type(value)  # exactly: a bool is an int, but not for an integer column
    plain_value = plain is not None and (kind in plain or (str in plain and isinstance(value, str)))
    if plain_value and (kind is not datetime or value.tzinfo is not None):  # naive: made aware
        return value
    return field.get_db_prep_save(value, connection)


def _insert_values(obj, earlier=()):
    """The columns of an unsaved row (its primary key and generated columns aside), their
    placeholders and values, as save() writes them: defaults, auto_now_add, adaptation, a
    database default as DEFAULT, and the same refusal of an unsaved related object. A foreign
    key to one of ``earlier`` (rows inserted by the same statement, by position) reads that
    row's id from its RETURNING instead."""
    columns, slots, values = [], [], []
    for field, column, plain in _fields_to_insert(type(obj)):
        columns.append(column)
        if field.is_relation and (related := field.get_cached_value(obj, None)) is not None:
            position = next((i for i, row in enumerate(earlier) if row is related), None)
            if position is not None:
                slots.append(f"(SELECT id FROM row{position})")  # noqa: S608 (a CTE's name)
                continue
            if related.pk is None:
                raise ValueError(
                    f"save() prohibited to prevent data loss due to unsaved related object "
                    f"'{field.name}'."
                )
            if getattr(obj, field.attname) is None:
                setattr(obj, field.attname, related.pk)
        value = field.pre_save(obj, add=True)
        if isinstance(value, DatabaseDefault):
            slots.append("DEFAULT")
        else:
            slots.append("%s")
            values.append(_adapted(field, value, plain))
    return columns, slots, values


class Statement:
    """Writes sent to PostgreSQL as one statement, a data-modifying CTE each, in order: rows
    inserted as ``save(force_insert=True)`` would insert them one by one (a row's foreign key
    to an earlier one read from that one's RETURNING), and other CTEs. Every CTE sees the
    database as it was before the statement, none another's changes: a row's id is the only
    thing one takes from another. The ORM's insert compiler cost a purchase more Python time
    than the rest of its statements together, and each statement is a round trip. For models
    no save signal listens to; the rows come back saved, with their primary keys."""

    def __init__(self):
        self.rows, self.parts, self.params, self.results = [], [], {}, []

    def insert(self, row):
        columns, slots, values = _insert_values(row, self.rows)
        position = len(self.rows)
        values = iter(values)
        for index, slot in enumerate(slots):
            if slot == "%s":
                name = f"p{len(self.params)}"
                self.params[name] = next(values)
                slots[index] = f"%({name})s"
        meta = row._meta
        self.parts.append(
            f"row{position} AS (INSERT INTO {meta.db_table} ({', '.join(columns)})"  # noqa: S608
            f" VALUES ({', '.join(slots)}) RETURNING {connection.ops.quote_name(meta.pk.column)}"
            " AS id)"
        )  # table and column names come from the models; values are parameters
        self.rows.append(row)
        return f"(SELECT id FROM row{position})"  # noqa: S608 (a CTE's name)

    def add(self, ctes, params, result=None):
        """CTEs (``name AS (...)``, comma-separated, named parameters), and the SQL of a value
        the statement returns (in ``run``'s answer)."""
        self.parts.append(ctes)
        self.params.update(params)
        if result is not None:
            self.results.append(result)

    def run(self):
        """Send it. Returns the values of ``add``'s results, in order."""
        ids = [f"(SELECT id FROM row{n})" for n in range(len(self.rows))]  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH {', '.join(self.parts)} SELECT {', '.join(ids + self.results)}",  # noqa: S608
                self.params,
            )
            found = cursor.fetchone()
        for row, pk in zip(self.rows, found, strict=False):
            row.pk = pk
            row._state.adding, row._state.db = False, connection.alias
        for row in self.rows:  # a foreign key filled from RETURNING: the id, as save() leaves it
            for field, _column, _plain in _fields_to_insert(type(row)):
                related = field.get_cached_value(row, None) if field.is_relation else None
                if related is not None and getattr(row, field.attname) is None:
                    setattr(row, field.attname, related.pk)
        return list(found[len(self.rows) :])


def insert_rows(*rows):
    """Insert unsaved rows in one statement (PostgreSQL): see ``Statement``."""
    statement = Statement()
    for row in rows:
        statement.insert(row)
    statement.run()


def insert_row(obj):
    """Insert an unsaved row as ``save(force_insert=True)`` would (one statement of
    ``insert_rows`` on PostgreSQL). ``obj`` comes back saved, with its primary key."""
    by_dialect(postgres=insert_rows, sqlite=lambda row: row.save(force_insert=True))(obj)


def insert_lot_and_entry(lot, entry):
    """Insert a lot and the entry that points at it in one statement (PostgreSQL): one round
    trip instead of two. Both objects come back saved."""
    entry.lot = lot
    insert_rows(lot, entry)


def take_from_lots(lots, points):
    """Take up to ``points`` from ``lots`` in order. Returns [(lot, taken)] and what is left."""
    taken = []
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take:
            PointsLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
            lot.remaining -= take
            taken.append((lot, take))
            left -= take
    return taken, left


# On PostgreSQL a spend is one statement however many lots it draws from: a running sum picks
# the lots soonest-expiry first and takes what each gives. The member's row lock (held by the
# caller) keeps other writers away; only the expiry job touches lots, and only expired ones.
# Every open lot holds at least a point, so the first ``points`` lots in spending order are all
# a spend can need: the LIMIT keeps the running sum off the member's other lots (a redeem of
# 200 points by a member with 50,000 open lots: 49 ms without it, the same as anyone's with it).
SPEND_CTES = f"""
first AS (
    SELECT id, remaining, expires_at FROM {PointsLot._meta.db_table}
    WHERE member_id = %(member)s AND remaining > 0
      AND available_from <= %(now)s AND expires_at > %(now)s
    ORDER BY expires_at, id LIMIT %(points)s
), open AS (
    SELECT id, remaining, SUM(remaining) OVER (ORDER BY expires_at, id) - remaining AS before
    FROM first
), take AS (
    SELECT id, LEAST(remaining, %(points)s - before) AS points FROM open
    WHERE before < %(points)s
), spent AS (
    UPDATE {PointsLot._meta.db_table} lot SET remaining = lot.remaining - take.points
    FROM take WHERE lot.id = take.id
    RETURNING lot.expires_at, lot.id, take.points
)"""  # noqa: S608  (table names from the model; values are parameters)
PG_SPEND = f"WITH {SPEND_CTES} SELECT expires_at, id, points FROM spent"  # noqa: S608


def spend_lots(member, now, points):
    """Take ``points`` from the member's available lots, soonest expiry first.

    Returns [(lot id, taken)] in that order (RETURNING has none of its own: refunds give points
    back to the latest allocations first); the caller has checked that the lots hold enough."""
    return by_dialect(postgres=_spend_lots_sql, sqlite=_spend_lots_rows)(member, now, points)


def _spend_lots_sql(member, now, points):
    with connection.cursor() as cursor:
        cursor.execute(PG_SPEND, {"member": member.pk, "now": now, "points": points})
        rows = sorted(cursor.fetchall())
    return [(lot_id, int(taken)) for _expires, lot_id, taken in rows]


def _spend_lots_rows(member, now, points):
    taken, _left = take_from_lots(open_lots(member, now), points)
    return [(lot.pk, take) for lot, take in taken]


def _not_enough(available, asked):
    return LoyaltyError(
        "insufficient_points",
        _("Not enough points: %(available)s available, %(asked)s asked.")
        % {"available": available, "asked": asked},
        fields={"points": [str(_("More than the available balance."))]},
    )


def debit(member, *, points, kind, now, purchase=None, available=None, **entry_fields):
    """Spend available points soonest-expiry first; refuses to overdraw.

    ``available`` may be passed when the caller has just computed it under the same lock.
    """
    entry = new_debit(
        member, points=points, kind=kind, now=now, purchase=purchase, available=available,
        **entry_fields,
    )  # fmt: skip
    taken = spend_lots(member, now, points)
    check_spent(member, sum(take for _lot, take in taken), points)
    if purchase is not None:
        LotAllocation.objects.bulk_create(
            [LotAllocation(purchase=purchase, lot_id=lot, points=take) for lot, take in taken]
        )
    entry.save(force_insert=True)
    return entry


def new_debit(member, *, points, kind, now, purchase=None, available=None, **entry_fields):
    """``debit``'s entry, not saved yet, after the refusal to overdraw; the member's sums
    changed in memory (for a caller that spends the lots with other writes: ``write_points``)."""
    if available is None:
        available = balance_of(member, now).available
    if points > available:
        raise _not_enough(available, points)
    entry = new_entry(member, kind, -points, now, purchase=purchase, **entry_fields)
    member.points_balance -= points
    return entry


def check_spent(member, got, points):
    """Refuse a spend whose lots gave less than the balance said they held (the caller's
    transaction then undoes it)."""
    if got != points:
        logger.error("member %s: lots disagree with the balance; run check_ledger", member.pk)
        raise _not_enough(got, points)


def write_points(member, rows, *, now, spend=0, purchase=None, balance_delta, debt_delta):
    """A purchase's writes, in one statement on PostgreSQL (a statement each elsewhere):
    ``rows`` inserted in order (the receipt, its entries and its lot, unsaved, as ``new_debit``
    and ``new_credit`` make them), ``spend`` points taken from the member's lots soonest expiry
    first with where they came from recorded against ``purchase`` (one of ``rows``), and the
    member's cached sums. Refuses a spend the lots cannot give (``check_spent``)."""
    by_dialect(postgres=_write_points_sql, sqlite=_write_points_rows)(
        member, rows, now, spend, purchase, [balance_delta, debt_delta]
    )


def _write_points_sql(member, rows, now, spend, purchase, deltas):
    statement = Statement()
    ids = {id(row): statement.insert(row) for row in rows}
    if spend:
        statement.add(
            f"{SPEND_CTES}, allocated AS (INSERT INTO {LotAllocation._meta.db_table}"  # noqa: S608
            f" (purchase_id, lot_id, points, returned) SELECT {ids[id(purchase)]}, id, points, 0"
            " FROM spent ORDER BY spent.expires_at, spent.id)",
            {"member": member.pk, "now": now, "points": spend},
            result="(SELECT COALESCE(SUM(points), 0) FROM spent)",
        )
    statement.add(
        f"members AS ({MEMBER_POINTS_SQL})",
        {"balance_delta": deltas[0], "debt_delta": deltas[1], "member": member.pk},
    )
    got = statement.run()
    if spend:
        check_spent(member, int(got[0]), spend)


def _write_points_rows(member, rows, now, spend, purchase, deltas):
    for row in rows:
        row.save(force_insert=True)
    if spend:
        taken = _spend_lots_rows(member, now, spend)
        check_spent(member, sum(take for _lot, take in taken), spend)
        LotAllocation.objects.bulk_create(
            [LotAllocation(purchase=purchase, lot_id=lot, points=take) for lot, take in taken]
        )
    save_member_points(member, balance_delta=deltas[0], debt_delta=deltas[1])


MEMBER_POINTS_SQL = (
    f"UPDATE {Member._meta.db_table} SET points_balance = points_balance + %(balance_delta)s,"  # noqa: S608
    " points_debt = points_debt + %(debt_delta)s WHERE id = %(member)s"
)  # the table name comes from the model


def save_member_points(member, *, balance_delta, debt_delta, **other_fields):
    """Write the cached sums with a relative update (the row is locked; this is belt and braces)."""
    if not other_fields:  # the common case, once per purchase: skip building it with the ORM
        with connection.cursor() as cursor:
            cursor.execute(
                MEMBER_POINTS_SQL,
                {"balance_delta": balance_delta, "debt_delta": debt_delta, "member": member.pk},
            )
        return
    Member.objects.filter(pk=member.pk).update(
        points_balance=F("points_balance") + balance_delta,
        points_debt=F("points_debt") + debt_delta,
        **other_fields,
    )


# A lot's expiry date. Every lot lasts a number of whole days (of 24 hours) from the moment its
# points become available; which setting gives the days depends on where the points come from.
EXPIRY_DAYS = {
    "earn": "expiry_days",  # a purchase's points, from the end of the pending days
    "bonus": "expiry_days",  # points available at once: referral, membership, adjustment
    "returned": "returned_points_expiry_days",  # spent points a refund gives back
    "birthday": "birthday_points_expiry_days",
}


def expires_after(start, days):
    """The expiry of a lot whose points are available from ``start`` and last ``days`` days (a
    campaign's bonus has its own days)."""
    return start + timedelta(days=days)


def lot_expiry(program, start, *, source="bonus"):
    """The expiry of a lot of ``source`` (a key of EXPIRY_DAYS) available from ``start``."""
    return expires_after(start, getattr(program, EXPIRY_DAYS[source]))


def lot_window(program, start):
    """When points earned at ``start`` become available and when they expire."""
    available_from = start + timedelta(days=program.pending_days)
    return available_from, lot_expiry(program, available_from, source="earn")


# The columns of a lot and of an entry, in the order bulk writers give them (the data
# generator's COPY); the set-based INSERTs below write the subsets named after them.
LOT_COLUMNS = (
    "id", "member_id", "points", "remaining", "available_from", "expires_at", "purchase_id",
    "created_at",
)  # fmt: skip
ENTRY_COLUMNS = (
    "id", "member_id", "kind", "account", "points", "purchase_id", "refund_id", "lot_id",
    "staff_id", "reason", "job", "batch", "expires_at", "created_at",
)  # fmt: skip
# A job's lots carry their batch; its entries name no purchase, refund or staff member.
BATCH_LOT_COLUMNS = (*LOT_COLUMNS[1:-1], "batch", "created_at")
BATCH_ENTRY_COLUMNS = tuple(
    column
    for column in ENTRY_COLUMNS
    if column not in {"id", "purchase_id", "refund_id", "staff_id"}
)


def lot_insert_sql(select_sql):
    """INSERT of the lots ``select_sql`` selects, one column each of BATCH_LOT_COLUMNS in order."""
    return f"INSERT INTO {PointsLot._meta.db_table} ({', '.join(BATCH_LOT_COLUMNS)}) {select_sql}"  # noqa: S608


def entry_insert_sql(select_sql):
    """INSERT of the ledger entries ``select_sql`` selects, one column each of
    BATCH_ENTRY_COLUMNS in order (a statement of its own or a step of a data-modifying CTE)."""
    return (
        f"INSERT INTO {LedgerEntry._meta.db_table} ({', '.join(BATCH_ENTRY_COLUMNS)}) {select_sql}"  # noqa: S608
    )


def credit_batch(cursor, *, batch, grants_sql, params, now, expires_at, reason, job):
    """Credit bonus points to many members at once, as ``points.credit`` does for one.

    ``grants_sql`` selects (member_id, points), one row per member. Each member gets a lot, a
    bonus entry and a relative balance update; any debt is repaid from the new lot first.
    Returns the number of members credited. The caller holds the transaction.
    """
    lock_members(cursor, grants_sql, params)
    cursor.execute(
        lot_insert_sql(f"""
        SELECT m.id, g.points,
               CASE WHEN m.points_debt >= g.points THEN 0 ELSE g.points - m.points_debt END,
               %s, %s, NULL, %s, %s
        FROM ({grants_sql}) g JOIN members_member m ON m.id = g.member_id
        WHERE g.points > 0
        """),  # noqa: S608
        [dt(now), dt(expires_at), batch, dt(now), *params],
    )
    credited = cursor.rowcount
    if not credited:
        return 0
    cursor.execute(
        entry_insert_sql("""
        SELECT member_id, 'bonus', 'bonus', points, id, %s, %s, %s, expires_at, %s
        FROM loyalty_pointslot WHERE batch = %s
        """),
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


def ledger_drift():
    """Members whose cached balance disagrees with their ledger or their lots (section 3).

    The invariant: balance = sum of the member's ledger entries = sum of remaining lot points
    minus debt. Returns rows of (card_number, cached balance, ledger sum, lots sum, debt).
    """
    entries = (
        LedgerEntry.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum("points"))
        .values("total")
    )
    lots = (
        PointsLot.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    members = Member.objects.annotate(
        ledger_sum=Coalesce(Subquery(entries), Value(0)),
        lots_sum=Coalesce(Subquery(lots), Value(0)),
    )
    drifting = members.exclude(points_balance=F("ledger_sum")) | members.exclude(
        points_balance=F("lots_sum") - F("points_debt")
    )
    return drifting.order_by("pk").values_list(
        "card_number", "points_balance", "ledger_sum", "lots_sum", "points_debt"
    )

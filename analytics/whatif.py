"""What if the rules changed? (issue 19, item 6) The last 12 months of purchases replayed under
today's rules and under a proposal, side by side, in one set-based statement.

A rule set is an earn rate and a threshold per tier, the days points stay available and the
largest share of a purchase points may pay. Each purchase of the period is replayed under both:

- its tier is the highest whose threshold the member's qualifying value (``qualifying_amount``,
  net of refunds, or the number of purchases for a count program) over the program's window
  before the purchase reaches; the downgrade grace, tiers set by hand and paid memberships'
  tiers are not replayed;
- the points spent are those the member spent, lowered to the rule set's cap
  (``floor(cap × (amount − discount) ÷ point value)``);
- the points earned are ``floor((amount − discount − points spent × point value) × share not
  refunded × the tier's earn rate)``, nothing below the minimum purchase; campaign multipliers,
  product rules and partner rates are left out of both sides alike;
- each purchase's points are a lot that expires after the rule set's days, and points are spent
  soonest-expiring first, as the engine spends them (``loyalty.engine.ledger``).

Each side replays the purchases from before the period too (the program's tier window, or twice
today's expiry when longer), under its own rules, so that the tiers and balances the period starts
with are those the rules would have led to. Bonus points (birthdays, campaigns, referrals) are
left out of both sides; spending beyond the replayed points is counted as spent from them
(``shortfall``).

Expired points, set-based: within a rule set every lot lasts as long, so lots expire in the order
they were earned, and the points expired by the expiry of lot i are ``max(0, max over j ≤ i of
(points of lots 1..j − points spent before lot j expired))``; the maximum over the lots expired by
T is what expired by T: two window sums over the member's purchases in time order. The
expected breakage of the points left at the end is the share of the points whose expiry fell in
the period that expired unused, under the same rule set.
"""

import contextvars
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from analytics.models import ReplayPurchase, Snapshot
from loyalty.engine.db import by_dialect, dt
from loyalty.engine.money import money, round_to
from loyalty.models import ProgramSettings, Purchase, Tier
from members.models import Member

PERIOD_DAYS = 365
# From this many purchases (PostgreSQL's estimate) the replay runs in slices of members on
# several connections at once.
SLICE_FROM = 1_000_000


@dataclass(frozen=True)
class Step:
    """A tier of a rule set: from this qualifying value, this share of the paid amount."""

    tier_id: int
    threshold: Decimal
    earn_rate: Decimal


@dataclass(frozen=True)
class Rules:
    steps: tuple  # of Step, lowest threshold first
    expiry_days: int
    cap: Decimal  # the largest share of a purchase points may pay, 0..1

    @classmethod
    def today(cls, program=None, tiers=None):
        program = program or ProgramSettings.load()
        tiers = Tier.objects.order_by("threshold") if tiers is None else tiers
        return cls(
            steps=tuple(Step(t.pk, t.threshold, t.earn_rate) for t in tiers),
            expiry_days=program.expiry_days,
            cap=program.max_redeem_share,
        )


@dataclass
class Side:
    """What one rule set gives over the period (points unless named)."""

    issued: int
    redeemed: int
    expired: int
    liability: int
    shortfall: int
    due: int  # points whose expiry fell in the period
    tiers: dict  # tier id -> members at the end of the period
    point_value: Decimal

    @property
    def breakage_rate(self):
        """Expired ÷ points whose expiry fell in the period (None when none fell due)."""
        return round_to(Decimal(self.expired) / Decimal(self.due), 6) if self.due else None

    @property
    def expected_breakage(self):
        return int(self.liability * (self.breakage_rate or 0))

    @property
    def liability_value(self):
        return money(self.liability * self.point_value)

    @property
    def deferred_value(self):
        """The liability at its stand-alone selling price: value × (1 − expected breakage)."""
        return money((self.liability - self.expected_breakage) * self.point_value)


@dataclass
class Replay:
    stored: bool  # read from the nightly inputs
    start: object
    end: object
    today: Side
    proposal: Side
    recorded_issued: int
    recorded_redeemed: int
    purchases: int
    members: int


def _floor(expression):
    """floor() of a non-negative floating-point expression. The true value has at most six
    decimals (kopecks × a rate of four), so a hair above it never crosses a whole number, and
    keeps 0.29 × 100 from flooring to 28."""
    return by_dialect(
        postgres=f"FLOOR(({expression}) + 1e-9)",
        sqlite=f"CAST(({expression}) + 1e-9 AS INTEGER)",
    )


def _least(a, b):
    return by_dialect(postgres=f"LEAST({a}, {b})", sqlite=f"MIN({a}, {b})")


def _greatest(a, b):
    return by_dialect(postgres=f"GREATEST({a}, {b})", sqlite=f"MAX({a}, {b})")


def _number(value):
    """A rule's number as SQL text: it comes from validated settings, never from raw input."""
    return format(Decimal(value), "f")


def _step_case(steps, column, what, scale=1):
    """CASE picking ``what`` ("rate" or the tier id) of the highest step ``column`` reaches
    (thresholds times ``scale``: the statement sums spend in kopecks)."""
    whens = " ".join(
        f"WHEN {column} >= {_number(s.threshold * scale)} THEN "
        f"{_number(s.earn_rate) if what == 'rate' else s.tier_id}"
        for s in reversed(steps[1:])
    )
    lowest = _number(steps[0].earn_rate) if what == "rate" else steps[0].tier_id
    return f"CASE {whens} ELSE {lowest} END" if whens else str(lowest)


def _until(end):
    """A window from the member's first purchase to ``end`` (a frame whose start stays put,
    which PostgreSQL sums as it goes; a sliding one would be summed again row by row)."""
    return f"PARTITION BY m ORDER BY d RANGE BETWEEN UNBOUNDED PRECEDING AND {end}"


def _side_sql(name, rules, period_day, end_day):
    """The member aggregates of one rule set over the rows of ``replayed``, where ``x`` is the
    points of the lots up to this one less the points spent before this one expires."""
    e = f"d + {_days(rules.expiry_days)}"
    expired_by = "MAX(CASE WHEN lot_{name} > 0 AND {e} {op} {day} THEN x_{name} END)"
    by_start = expired_by.format(name=name, e=e, op="<", day=period_day)
    by_end = expired_by.format(name=name, e=e, op="<=", day=end_day)
    return (
        f"SUM(CASE WHEN d >= {period_day} THEN lot_{name} ELSE 0 END) AS issued_{name},"
        f" SUM(CASE WHEN d >= {period_day} THEN red_{name} ELSE 0 END) AS redeemed_{name},"
        f" {_greatest(f'COALESCE({by_end}, 0)', 0)} AS expired_end_{name},"
        f" {_greatest(f'COALESCE({by_start}, 0)', 0)} AS expired_start_{name},"
        f" SUM(CASE WHEN {e} >= {period_day} AND {e} <= {end_day} THEN lot_{name} ELSE 0 END)"
        f" AS due_{name},"
        f" SUM(lot_{name} - red_{name}) AS net_{name}"
    )


def _real():
    return by_dialect(postgres="::float8", sqlite=" * 1.0")


def _scale(program):
    """What a purchase adds to the qualifying value is in kopecks (or 1 for a count program)."""
    return 1 if program.tier_qualification == ProgramSettings.Qualification.COUNT else 100


def inputs_sql(program):
    """Every named purchase in [first, end) of members in [low, high), with what the replay
    needs of it that no proposal changes: its time ``d``, what it adds to the qualifying value
    ``q`` and the member's value before it ``qualified``, its amount after discounts ``base``,
    the share not refunded ``kept``, whether it is below the minimum purchase ``small``, the
    points it spent ``red`` and earned ``earned`` (``ReplayPurchase`` keeps them nightly)."""
    # Floating point throughout: sums of whole numbers (points, kopecks) are exact in it, and
    # far cheaper for PostgreSQL than numeric in the window sums the statement is made of.
    real = _real()
    # A purchase's time: PostgreSQL orders the windows by the timestamp itself, which the
    # (member, time) index gives in order; SQLite by its day number.
    day = by_dialect(postgres="p.occurred_at", sqlite="julianday(p.occurred_at)")
    if _scale(program) == 1:
        qualifying = f"(CASE WHEN p.qualifying_amount > 0 THEN 1 ELSE 0 END){real}"
    else:
        qualifying = f"ROUND(p.qualifying_amount * 100){real}"
    kept = (
        f"CASE WHEN p.refunded_amount = 0 THEN 1.0"
        f" ELSE 1 - p.refunded_amount{real} / p.amount{real} END"
    )
    window = _days(program.tier_window_days)
    # The value before a purchase: everything up to it less everything up to the window's
    # length before it.
    return f"""
SELECT b.*, SUM(q) OVER ({_until("CURRENT ROW")}) - q
            - COALESCE(SUM(q) OVER ({_until(f"{window} PRECEDING")}), 0) AS qualified
FROM (
    SELECT p.member_id AS m, {day} AS d, p.occurred_at AS occurred_at, p.id AS purchase_id,
           {qualifying} AS q, (p.amount - p.discount_amount){real} AS base, {kept} AS kept,
           p.amount < {_number(program.min_purchase_amount)} AS small,
           p.redeemed_points{real} AS red, (p.earned_points - p.reversed_points){real} AS earned
    FROM {Purchase._meta.db_table} p
    WHERE p.member_id >= %(low)s AND p.member_id < %(high)s AND p.is_historical = %(false)s
      AND p.occurred_at >= %(first)s AND p.occurred_at < %(end)s
) b"""  # noqa: S608  (numbers from validated settings)


def _stored_sql():
    """The same rows as ``inputs_sql`` from the nightly ``ReplayPurchase`` table."""
    day = by_dialect(postgres="occurred_at", sqlite="julianday(occurred_at)")
    return f"""
SELECT member_id AS m, {day} AS d, q, qualified, base, kept, small, red, earned
FROM {ReplayPurchase._meta.db_table}
WHERE member_id >= %(low)s AND member_id < %(high)s
  AND occurred_at >= %(first)s AND occurred_at < %(end)s"""  # noqa: S608


def _sql(today, proposal, program, *, period_day, end_day, stored):
    """The statement over the inputs (``inputs_sql``, or the nightly copy of them): what each
    purchase spends under each rule set (``capped``); the points spent up to its lot's expiry and
    its lot (``lots``); the points of the lots up to it (``replayed``); the member's figures
    (``members``) and their sums."""
    real, scale = _real(), _scale(program)
    value = _number(program.point_value)
    capped, lots, members = [], [], []
    for name, rules in (("a", today), ("b", proposal)):
        cap = _floor(f"{_number(rules.cap)} * base / {value}")
        capped.append(f"CASE WHEN red = 0 THEN 0{real} ELSE {_least('red', cap)} END AS red_{name}")
        rate = _step_case(rules.steps, "qualified", "rate", scale)
        paid = _greatest(f"base - red_{name} * {value}", 0)
        lots.append(
            f"SUM(red_{name}) OVER ({_until(f'{_days(rules.expiry_days)} FOLLOWING')})"
            f" AS spent_{name},"
            f" CASE WHEN small THEN 0 ELSE {_floor(f'{paid} * kept * {rate}')} END AS lot_{name}"
        )
        members.append(_side_sql(name, rules, period_day, end_day))
    tiers = [
        f"{_step_case(rules.steps, 'qualified_end', 'tier', scale)} AS tier_{name}"
        for name, rules in (("a", today), ("b", proposal))
    ]
    source = _stored_sql() if stored else inputs_sql(program)
    return f"""
WITH inputs AS ({source}
), capped AS (
    SELECT i.m, i.d, i.q, i.qualified, i.base, i.kept, i.small, i.red, i.earned,
           {capped[0]}, {capped[1]}
    FROM inputs i
), lots AS (
    SELECT m, d, q, earned, red, red_a, red_b, {lots[0]}, {lots[1]} FROM capped
), replayed AS (
    SELECT l.*, SUM(lot_a) OVER ({_until("CURRENT ROW")}) - spent_a AS x_a,
           SUM(lot_b) OVER ({_until("CURRENT ROW")}) - spent_b AS x_b
    FROM lots l
), members AS (
    SELECT m, SUM(CASE WHEN d >= {period_day} THEN 1 ELSE 0 END) AS purchases,
           SUM(CASE WHEN d >= {period_day} THEN earned ELSE 0 END) AS recorded_issued,
           SUM(CASE WHEN d >= {period_day} THEN red ELSE 0 END) AS recorded_redeemed,
           SUM(CASE WHEN d > {end_day} - {_days(program.tier_window_days)} THEN q ELSE 0 END)
               AS qualified_end,
           {members[0]}, {members[1]}
    FROM replayed GROUP BY m
), ended AS (
    SELECT members.*, {tiers[0]}, {tiers[1]} FROM members
)
SELECT 'totals', COUNT(*), SUM(purchases), SUM(recorded_issued), SUM(recorded_redeemed),
       SUM(issued_a), SUM(redeemed_a), SUM(expired_end_a - expired_start_a),
       SUM({_greatest("net_a - expired_end_a", 0)}), SUM({_greatest("expired_end_a - net_a", 0)}),
       SUM(due_a),
       SUM(issued_b), SUM(redeemed_b), SUM(expired_end_b - expired_start_b),
       SUM({_greatest("net_b - expired_end_b", 0)}), SUM({_greatest("expired_end_b - net_b", 0)}),
       SUM(due_b)
FROM ended
UNION ALL
SELECT 'a', tier_a, COUNT(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL
FROM ended GROUP BY tier_a
UNION ALL
SELECT 'b', tier_b, COUNT(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL
FROM ended GROUP BY tier_b
"""  # noqa: S608  (numbers from validated rules, no user text)


def _days(days):
    """A number of days in the unit of the statement's time column ``d``."""
    return by_dialect(postgres=f"interval '{int(days)} days'", sqlite=str(int(days)))


def _moment(name, moment):
    """SQL for a moment comparable with ``d``: a parameter on PostgreSQL, a day number on
    SQLite (Julian days, as ``julianday`` gives)."""
    return by_dialect(
        postgres=f"CAST(%({name})s AS timestamptz)",
        sqlite=repr(moment.timestamp() / 86400 + 2440587.5),
    )


def _reach(program, expiry_days, end):
    """(start of the period, first purchase replayed) for a period ending at ``end``."""
    start = end - timedelta(days=PERIOD_DAYS)
    return start, start - timedelta(days=max(program.tier_window_days, 2 * expiry_days))


def _statement(proposal, as_of, today, program, *, stored=False):
    end = as_of
    start, first = _reach(program, today.expiry_days, end)
    sql = _sql(
        today,
        proposal,
        program,
        period_day=_moment("start", start),
        end_day=_moment("end", end),
        stored=stored,
    )
    return start, end, sql, {"false": False, "first": dt(first), "start": dt(start), "end": dt(end)}


def refresh_inputs(as_of, program=None):
    """Rebuild ``ReplayPurchase`` for a period ending at ``as_of`` (the nightly job's step):
    one statement, in the order the replay reads, and the moment on the job's snapshot. Returns
    the number of purchases kept."""
    program = program or ProgramSettings.load()
    _start, first = _reach(program, program.expiry_days, as_of)
    table = ReplayPurchase._meta.db_table
    columns = "member_id, occurred_at, purchase_id, q, qualified, base, kept, small, red, earned"
    picked = "m, occurred_at, purchase_id, q, qualified, base, kept, small, red, earned"
    params = {"false": False, "first": dt(first), "end": dt(as_of), "low": 0, "high": 2**62}
    with transaction.atomic(), connection.cursor() as cursor:
        empty = by_dialect(postgres="TRUNCATE {}", sqlite="DELETE FROM {}")
        cursor.execute(empty.format(table))
        if by_dialect(postgres=True, sqlite=False):
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {picked} FROM ({inputs_sql(program)}) i"  # noqa: S608
            " ORDER BY m, occurred_at, purchase_id",
            params,
        )
        rows = cursor.rowcount
        if by_dialect(postgres=True, sqlite=False):
            cursor.execute(f"ANALYZE {table}")
        Snapshot.objects.filter(pk=1).update(replay_as_of=as_of)
    return rows


def _run(sql, params):
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorting a slice of purchases by member fits in memory instead of on disk.
        if by_dialect(postgres=True, sqlite=False):
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        return cursor.fetchall()


def _in_thread(sql, params):
    """The statement on a connection of this thread's own, closed after."""
    try:
        return _run(sql, params)
    finally:
        connection.close()


def _slices(workers):
    """[low, high) member id ranges, one a worker: the statement on each runs on its own
    connection (PostgreSQL runs a window on one core; the machine has several)."""
    bounds = Member.objects.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return [(0, 1)]
    low, high = bounds["low"], bounds["high"] + 1
    step = -(-(high - low) // workers)
    return [(start, min(start + step, high)) for start in range(low, high, step)]


def auto_workers():
    """One connection for small programs (and on SQLite, and in a test's transaction, whose
    rows other connections cannot see); one a core from a million purchases on PostgreSQL."""
    if not by_dialect(postgres=True, sqlite=False) or connection.in_atomic_block:
        return 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Purchase._meta.db_table]
        )
        (rows,) = cursor.fetchone()
    return max(1, min(os.cpu_count() or 1, 4)) if rows >= SLICE_FROM else 1


def explain(proposal, *, as_of=None):
    """Print the plan of the replay of every member with its timings (PostgreSQL; for
    bench.whatif): from the nightly inputs without ``as_of``."""
    program = ProgramSettings.load()
    stored = as_of is None
    as_of = as_of or stored_as_of()
    _start, _end, sql, params = _statement(
        proposal, as_of, Rules.today(program), program, stored=stored
    )
    low, high = _slices(1)[0]
    for (line,) in _run("EXPLAIN (ANALYZE, BUFFERS) " + sql, {**params, "low": low, "high": high}):
        print(line)


def _merge(results):
    """The slices' rows added up: the totals row, and members by (side, tier)."""
    totals = None
    tiers = defaultdict(int)
    for rows in results:
        for row in rows:
            if row[0] == "totals":
                values = [value or 0 for value in row[1:]]
                totals = (
                    values
                    if totals is None
                    else [x + y for x, y in zip(totals, values, strict=True)]
                )
            else:
                tiers[row[0], int(row[1])] += int(row[2])
    return totals, tiers


def stored_as_of():
    """The end of the period the nightly inputs cover, or None before the job's first run."""
    return Snapshot.objects.filter(pk=1).values_list("replay_as_of", flat=True).first()


def replay(proposal, *, as_of=None, today=None, program=None, workers=None):
    """The 12 months before ``as_of`` under today's rules and under ``proposal``; without
    ``as_of``, the 12 months the nightly inputs cover (read from ``ReplayPurchase``: the
    qualifying values are worked out already), or the 12 months to now before the job's first
    run."""
    program = program or ProgramSettings.load()
    today = today or Rules.today(program)
    stored = as_of is None and stored_as_of() is not None
    if as_of is None:
        as_of = stored_as_of() if stored else timezone.now()
    start, end, sql, params = _statement(proposal, as_of, today, program, stored=stored)
    workers = workers or auto_workers()
    slices = [{**params, "low": low, "high": high} for low, high in _slices(workers)]
    if len(slices) == 1:
        results = [_run(sql, slices[0])]
    else:
        with ThreadPoolExecutor(len(slices)) as pool:
            # Each thread keeps this one's choice of database (the replica, when reading one).
            runs = [
                pool.submit(contextvars.copy_context().run, _in_thread, sql, chunk)
                for chunk in slices
            ]
            results = [run.result() for run in runs]
    totals, counted = _merge(results)
    _replayed, purchases, rec_issued, rec_redeemed, *figures = totals
    members = Member.objects.exclude(status=Member.Status.MERGED).count()
    sides = []
    for name, rules, offset in (("a", today, 0), ("b", proposal, 6)):
        lowest = rules.steps[0].tier_id
        tiers = {step.tier_id: counted.get((name, step.tier_id), 0) for step in rules.steps}
        tiers[lowest] = members - sum(n for tier, n in tiers.items() if tier != lowest)
        issued, redeemed, expired, liability, shortfall, due = (
            int(value or 0) for value in figures[offset : offset + 6]
        )
        sides.append(
            Side(issued, redeemed, expired, liability, shortfall, due, tiers, program.point_value)
        )
    return Replay(
        stored=stored,
        start=start,
        end=end,
        today=sides[0],
        proposal=sides[1],
        recorded_issued=int(rec_issued or 0),
        recorded_redeemed=int(rec_redeemed or 0),
        purchases=int(purchases or 0),
        members=members,
    )

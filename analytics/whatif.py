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

The purchases of the years before the period are replayed as they were recorded (the points
they earned and spent, today's expiry), so that both sides start from the same balances. Bonus
points (birthdays, campaigns, referrals) are left out of both sides; spending beyond the replayed
points is counted as spent from them (``shortfall``).

Expired points, set-based: with lots in expiry order, the points expired by the expiry of lot i
are ``max(0, max over j ≤ i of (points of lots 1..j − points spent before lot j expired))``, a
running maximum of one window pass; ``max over lots expired by T`` gives what expired by T. The
expected breakage of the points left at the end is the share of the points whose expiry fell in
the period that expired unused, under the same rule set.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction

from loyalty.engine.db import by_dialect, dt
from loyalty.engine.money import money, round_to
from loyalty.models import ProgramSettings, Purchase, Tier
from members.models import Member

PERIOD_DAYS = 365


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
    start: object
    end: object
    today: Side
    proposal: Side
    recorded_issued: int
    recorded_redeemed: int
    purchases: int
    members: int


def _floor(expression):
    """floor() of a non-negative expression, as an integer (SQLite computes in floating point:
    a hair above the value keeps 0.29 × 100 from flooring to 28)."""
    return by_dialect(
        postgres=f"FLOOR({expression})::bigint",
        sqlite=f"CAST(({expression}) + 1e-9 AS INTEGER)",
    )


def _least(a, b):
    return by_dialect(postgres=f"LEAST({a}, {b})", sqlite=f"MIN({a}, {b})")


def _greatest(a, b):
    return by_dialect(postgres=f"GREATEST({a}, {b})", sqlite=f"MAX({a}, {b})")


def _number(value):
    """A rule's number as SQL text: it comes from validated settings, never from raw input."""
    return format(Decimal(value), "f")


def _step_case(steps, column, what):
    """CASE picking ``what`` ("rate" or the tier id) of the highest step ``column`` reaches."""
    whens = " ".join(
        f"WHEN {column} >= {_number(s.threshold)} THEN "
        f"{_number(s.earn_rate) if what == 'rate' else s.tier_id}"
        for s in reversed(steps[1:])
    )
    lowest = _number(steps[0].earn_rate) if what == "rate" else steps[0].tier_id
    return f"CASE {whens} ELSE {lowest} END" if whens else str(lowest)


def _frame(offset):
    """From the member's first row to ``offset`` days after this row's day."""
    end = f"{offset} FOLLOWING" if offset >= 0 else f"{-offset} PRECEDING"
    return f"PARTITION BY m ORDER BY d RANGE BETWEEN UNBOUNDED PRECEDING AND {end}"


def _side_sql(name, rules, expiry_today, period_day, end_day):
    """The window columns (level 2) and member aggregates (level 3) of one rule set."""
    shift = rules.expiry_days - expiry_today
    lots_to = f"SUM(w_lot) OVER ({_frame(0)})"
    # The points of every lot expiring no later than this row's lot, and the points spent
    # before then; a recorded lot (before the period) expires ``expiry_today`` days after its
    # day, a replayed one ``rules.expiry_days``.
    window = (
        f"CASE WHEN d < {period_day} THEN {lots_to} + SUM(lot_{name}) OVER ({_frame(-shift)})"
        f" - SUM(red_{name}) OVER ({_frame(expiry_today)})"
        f" ELSE SUM(w_lot) OVER ({_frame(shift)}) + SUM(lot_{name}) OVER ({_frame(0)})"
        f" - SUM(red_{name}) OVER ({_frame(rules.expiry_days)}) END AS x_{name},"
        f" CASE WHEN d < {period_day} THEN d + {expiry_today} ELSE d + {rules.expiry_days} END"
        f" AS e_{name}"
    )
    has_lot = f"(w_lot + lot_{name}) > 0"
    expired_by = "MAX(CASE WHEN {has_lot} AND e_{name} {op} {day} THEN x_{name} END)"
    by_start = expired_by.format(has_lot=has_lot, name=name, op="<", day=period_day)
    by_end = expired_by.format(has_lot=has_lot, name=name, op="<=", day=end_day)
    members = (
        f"SUM(CASE WHEN d >= {period_day} THEN lot_{name} ELSE 0 END) AS issued_{name},"
        f" SUM(CASE WHEN d >= {period_day} THEN red_{name} ELSE 0 END) AS redeemed_{name},"
        f" {_greatest(f'COALESCE({by_end}, 0)', 0)} AS expired_end_{name},"
        f" {_greatest(f'COALESCE({by_start}, 0)', 0)} AS expired_start_{name},"
        f" SUM(CASE WHEN e_{name} >= {period_day} AND e_{name} <= {end_day}"
        f" THEN w_lot + lot_{name} ELSE 0 END) AS due_{name},"
        f" SUM(w_lot + lot_{name} - red_{name}) AS net_{name}"
    )
    return window, members


def _sql(today, proposal, program, *, period_day, end_day):
    day = by_dialect(
        postgres="EXTRACT(EPOCH FROM p.occurred_at)::float8 / 86400",
        sqlite="julianday(p.occurred_at)",
    )
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        qualifying = "CASE WHEN p.qualifying_amount > 0 THEN 1 ELSE 0 END"
    else:
        qualifying = "p.qualifying_amount"
    window_days = program.tier_window_days
    value = _number(program.point_value)
    replayed = []
    for name, rules in (("a", today), ("b", proposal)):
        cap = _floor(f"{_number(rules.cap)} * base / {value}")
        red = _least("red", cap)
        paid = _greatest(f"base - {red} * {value}", 0)
        rate = _step_case(rules.steps, "qualified", "rate")
        replayed.append(
            f"CASE WHEN d >= {period_day} THEN {red} ELSE red END AS red_{name},"
            f" CASE WHEN d < {period_day} OR amount < {_number(program.min_purchase_amount)}"
            f" THEN 0 ELSE {_floor(f'{paid} * kept * {rate}')} END AS lot_{name}"
        )
    window_a, members_a = _side_sql("a", today, today.expiry_days, period_day, end_day)
    window_b, members_b = _side_sql("b", proposal, today.expiry_days, period_day, end_day)
    tiers = []
    for name, rules in (("a", today), ("b", proposal)):
        tier = _step_case(rules.steps, "qualified_end", "tier")
        tiers.append(f"{tier} AS tier_{name}")
    return f"""
WITH bought AS (
    SELECT p.member_id AS m, {day} AS d, p.amount AS amount,
           p.amount - p.discount_amount AS base, p.redeemed_points AS red,
           p.earned_points - p.reversed_points AS earned,
           CASE WHEN p.amount > 0 THEN (p.amount - p.refunded_amount) / p.amount ELSE 0 END
               AS kept,
           {qualifying} AS q
    FROM {Purchase._meta.db_table} p
    WHERE p.member_id IS NOT NULL AND p.is_historical = %(false)s
      AND p.occurred_at >= %(first)s AND p.occurred_at < %(end)s
), qualified AS (
    SELECT b.*, SUM(q) OVER (PARTITION BY m ORDER BY d
                             RANGE BETWEEN {window_days} PRECEDING AND CURRENT ROW) - q
               AS qualified
    FROM bought b
), replayed AS (
    SELECT m, d, q, earned, red AS red_recorded,
           CASE WHEN d < {period_day} THEN earned ELSE 0 END AS w_lot,
           {replayed[0]}, {replayed[1]}
    FROM qualified
), windows AS (
    SELECT r.*, {window_a}, {window_b} FROM replayed r
), members AS (
    SELECT m, COUNT(*) FILTER (WHERE d >= {period_day}) AS purchases,
           SUM(CASE WHEN d >= {period_day} THEN earned ELSE 0 END) AS recorded_issued,
           SUM(CASE WHEN d >= {period_day} THEN red_recorded ELSE 0 END) AS recorded_redeemed,
           SUM(CASE WHEN d > {end_day} - {window_days} THEN q ELSE 0 END) AS qualified_end,
           {members_a}, {members_b}
    FROM windows GROUP BY m
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


def _day_number(moment):
    """``moment`` in the unit and origin of the statement's day column ``d``."""
    days = moment.timestamp() / 86400
    return days + by_dialect(postgres=0, sqlite=2440587.5)


def replay(proposal, *, as_of, today=None, program=None):
    """The 12 months before ``as_of`` under today's rules and under ``proposal``."""
    program = program or ProgramSettings.load()
    today = today or Rules.today(program)
    end = as_of
    start = end - timedelta(days=PERIOD_DAYS)
    first = start - timedelta(days=max(program.tier_window_days, 2 * today.expiry_days))
    sql = _sql(
        today,
        proposal,
        program,
        period_day=repr(_day_number(start)),
        end_day=repr(_day_number(end)),
    )
    params = {"false": False, "first": dt(first), "end": dt(end)}
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorting the purchases of two years by member fits in memory instead of on disk.
        if by_dialect(postgres=True, sqlite=False):
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    members = Member.objects.exclude(status=Member.Status.MERGED).count()
    totals = next(row for row in rows if row[0] == "totals")
    (_, replayed, purchases, rec_issued, rec_redeemed, *figures) = totals
    sides = []
    for name, rules, offset in (("a", today, 0), ("b", proposal, 6)):
        counted = {tier: count for side, tier, count, *_ in rows if side == name}
        lowest = rules.steps[0].tier_id
        tiers = {step.tier_id: counted.get(step.tier_id, 0) for step in rules.steps}
        tiers[lowest] = members - sum(n for tier, n in tiers.items() if tier != lowest)
        issued, redeemed, expired, liability, shortfall, due = (
            int(value or 0) for value in figures[offset : offset + 6]
        )
        sides.append(
            Side(issued, redeemed, expired, liability, shortfall, due, tiers, program.point_value)
        )
    return Replay(
        start=start,
        end=end,
        today=sides[0],
        proposal=sides[1],
        recorded_issued=int(rec_issued or 0),
        recorded_redeemed=int(rec_redeemed or 0),
        purchases=int(purchases or 0),
        members=members,
    )

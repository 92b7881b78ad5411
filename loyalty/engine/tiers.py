"""Tier qualification, in one place: the till's form (one member, at each purchase) beside the
nightly job's set-based form (every member, ``reevaluate_tiers``).

Each rule is written once per form, and the two forms of a rule sit side by side:

- what counts, over which window: ``qualifying_sql`` (the till) and ``_values`` /
  ``QUALIFYING_SELECT`` (the job): purchases in (as_of − window, as_of], each by its
  ``qualifying_amount`` (the paid amount net of its refunds), or their number for a count
  programme;
- the tier a value earns: ``tier_for`` and ``EARNED_TIER_SQL``;
- moving up at once: ``upgraded_tier`` (on the purchase that crosses the threshold) and
  ``REEVALUATE_SQL``'s first case (a lowered threshold, a refund undone);
- a paid membership's tier: ``plan_tier_change`` (on joining or renewing) and
  ``MEMBERSHIP_TIER_SQL``;
- falling, after the grace period: the job only (``REEVALUATE_SQL``, ``REACHED_SQL``). The till
  never lowers a tier.

tests/jobs/test_tier_forms.py checks that the two forms agree.
"""

import contextlib
from datetime import timedelta
from operator import attrgetter

from django.db import DatabaseError, connection, transaction

from loyalty.engine import progress, webhook_events
from loyalty.engine.db import dt, member_ranges, minus_days, temp_table
from loyalty.engine.locking import retry_on_conflict
from loyalty.engine.money import MONEY_SQL, money
from loyalty.models import Membership, ProgramSettings, Purchase, Tier, perk_label
from webhooks.models import Event

BATCH_MEMBERS = 10_000

# What counts, over which window. The till's form: one member's value at ``until``, the sum
# of the current ``qualifying_amount`` (net of every refund so far) of the purchases in the window
# ending then, or their number (those with something left) for a count programme. The job's form
# just below is the same rule with each refund dated: a refund made after the moment adds its
# share back, so at a moment after every refund the two give the same value.


def window_start(program, until):
    """The qualifying window ending at ``until`` is (window_start, until]."""
    return until - timedelta(days=program.tier_window_days)


def qualifying_sql(program, member_id, until):
    """The till's qualifying value of one member at ``until``: (sql, params), one row, one
    column, read with the member's lot sums in the purchase's first statement.

    Hand-written: it runs on most purchases, and building it through the ORM cost more than
    PostgreSQL's index scan (member_id, occurred_at) that answers it.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        what = "COUNT(*)"
        extra = " AND qualifying_amount > 0"
    else:
        what, extra = "COALESCE(SUM(qualifying_amount), 0)", ""
    return (
        f"SELECT {what} FROM {Purchase._meta.db_table}"  # noqa: S608  (no user input)
        f" WHERE member_id = %s AND occurred_at > %s AND occurred_at <= %s{extra}",
        [member_id, adapt(window_start(program, until)), adapt(until)],
    )


def qualifying_value(program, member_id, until):
    """Rolling spend (or count) net of refunds, over the program's window ending at ``until``."""
    sql, params = qualifying_sql(program, member_id, until)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (value,) = cursor.fetchone()
    return money(value)


# The job's form of the same rule (``qualifying_sql``): a purchase's qualifying amount as it
# was at a moment, its refunds made after then (``later`` compares a refund's time with the
# moment) added back; ``SPEND`` or ``COUNT`` of it over the window.
AMOUNT_AT = """(p.qualifying_amount + CASE WHEN p.refunded_amount > 0 THEN COALESCE(
    (SELECT SUM(f.qualifying_amount) FROM loyalty_refund f
     WHERE f.purchase_id = p.id AND {later}), 0) ELSE 0 END)"""
SPEND = MONEY_SQL.format("COALESCE(SUM({amount}), 0)")
COUNT = "COALESCE(SUM(CASE WHEN {amount} > 0 THEN 1 ELSE 0 END), 0)"


def _values(program):
    """The qualifying value SQL at each moment the statements name, for the program's measure."""
    measure = COUNT if program.tier_qualification == ProgramSettings.Qualification.COUNT else SPEND

    def at(later):
        return measure.format(amount=AMOUNT_AT.format(later=later))

    return {
        "value_now": at("f.created_at > %(as_of)s"),
        "value_at_cutoff": at("f.created_at > %(cutoff)s"),
        "value_at_cutoff_since": at("f.created_at > %(cutoff_since)s"),
        "value_after_purchase": at("f.created_at > q.occurred_at"),
        # Just before the refund: it and any refund of the same moment not made yet.
        "value_before_refund": at("f.created_at >= r.created_at"),
        "purchase_window_start": minus_days("q.occurred_at", program.tier_window_days),
        "refund_window_start": minus_days("r.created_at", program.tier_window_days),
    }


def moments(program, as_of):
    """The statements' named times: now, the window's start, the grace period's start, the
    start of the window that ended then, and the start of the window before that."""
    since = window_start(program, as_of)
    cutoff = as_of - timedelta(days=program.downgrade_grace_days)
    cutoff_since = window_start(program, cutoff)
    before_since = window_start(program, cutoff_since)
    return {
        "as_of": dt(as_of),
        "since": dt(since),
        "cutoff": dt(cutoff),
        "cutoff_since": dt(cutoff_since),
        "before_since": dt(before_since),
    }


# For every member who bought in the window or in the grace period before it, two qualifying
# values (spend net of refunds, or the number of purchases), computed once per run into a
# temporary table of this connection: ``value``, the rolling value now, and ``held``, the most
# it was at any moment of the grace period (as of the grace period's start, just after each
# purchase since, and just before each refund since). ``held`` is the rule of SPEC's "falls only
# after N days below its threshold": a member keeps the highest tier their rolling value reached
# at some moment of the last N days, so a member who went back above during the grace period
# starts a new one. Each value is the one of its moment: a purchase counts with the refunds made
# by then (``qualifying_amount`` is net of every refund so far; each later refund's share is
# added back), so a refund lowers the value from the moment it was made, never before.
# One pass over the window's receipts instead of a probe per member in every batch.
QUALIFYING_TABLE = "tier_qualifying"
QUALIFYING_SELECT = """
SELECT s.member_id, COALESCE(MAX(CASE WHEN s.part = 0 THEN s.value END), 0) AS value,
       MAX(s.value) AS held
FROM (
    SELECT p.member_id, 0 AS part, {value_now} AS value
    FROM loyalty_purchase p
    WHERE p.member_id IS NOT NULL AND p.occurred_at > %(since)s AND p.occurred_at <= %(as_of)s
    GROUP BY p.member_id
    UNION ALL
    SELECT p.member_id, 1 AS part, {value_at_cutoff} AS value
    FROM loyalty_purchase p
    WHERE p.member_id IS NOT NULL
        AND p.occurred_at > %(cutoff_since)s AND p.occurred_at <= %(cutoff)s
    GROUP BY p.member_id
    UNION ALL
    SELECT q.member_id, 2 AS part, {value_after_purchase} AS value
    FROM loyalty_purchase q
    JOIN loyalty_purchase p ON p.member_id = q.member_id
        AND p.occurred_at <= q.occurred_at AND p.occurred_at > {purchase_window_start}
    WHERE q.member_id IS NOT NULL AND q.occurred_at > %(cutoff)s AND q.occurred_at <= %(as_of)s
    GROUP BY q.id, q.member_id
    UNION ALL
    SELECT rp.member_id, 3 AS part, {value_before_refund} AS value
    FROM loyalty_refund r
    JOIN loyalty_purchase rp ON rp.id = r.purchase_id
    JOIN loyalty_purchase p ON p.member_id = rp.member_id
        AND p.occurred_at <= r.created_at AND p.occurred_at > {refund_window_start}
    WHERE rp.member_id IS NOT NULL AND r.created_at > %(cutoff)s AND r.created_at <= %(as_of)s
    GROUP BY r.id, rp.member_id
) s
GROUP BY s.member_id
"""

# Whether the receipts show the value at or above ``{threshold}`` at some moment of the window
# before the grace period (at its start, or just after a purchase in it): then the value's fall
# below is theirs to date (a purchase leaving the window, a refund), and the member falls on the
# first run after the grace even if no run saw them below. When they do not (the threshold was
# raised, the tier was set by hand or came with a lapsed membership), nothing dates the fall but
# the run that first saw it: ``below_tier_since``. Evaluated only for a member about to fall.
REACHED_SQL = """(
    (SELECT {value_at_cutoff_since} FROM loyalty_purchase p
     WHERE p.member_id = {member} AND p.occurred_at > %(before_since)s
        AND p.occurred_at <= %(cutoff_since)s) >= {threshold}
    OR EXISTS (
        SELECT 1 FROM loyalty_purchase q
        JOIN loyalty_purchase p ON p.member_id = q.member_id
            AND p.occurred_at <= q.occurred_at AND p.occurred_at > {purchase_window_start}
        WHERE q.member_id = {member}
            AND q.occurred_at > %(cutoff_since)s AND q.occurred_at <= %(cutoff)s
        GROUP BY q.id
        HAVING {value_after_purchase} >= {threshold}))"""

# The highest tier threshold a paid membership gives the member {when}: live now, or live at
# some moment of the grace period (a lapsed membership's tier falls after the grace, like any).
MEMBERSHIP_TIER_SQL = """(
    SELECT MAX(mt.threshold) FROM loyalty_membership ms
    JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
    JOIN loyalty_tier mt ON mt.id = pl.tier_id
    WHERE ms.member_id = q.member_id AND ms.started_at <= %(as_of)s AND {when})"""
LIVE_NOW = "ms.status IN ('trial', 'active') AND ms.period_end > %(as_of)s"
LIVE_IN_GRACE = (
    "ms.period_end > %(cutoff)s AND (ms.status IN ('trial', 'active')"
    " OR COALESCE(ms.ended_at, ms.period_end) > %(cutoff)s)"
)


def plan_tier_change(member, plan, now):
    """The till's form of ``MEMBERSHIP_TIER_SQL``: on joining or renewing, the plan's tier at
    once if above the member's, as the fields to save (falling waits for the nightly job)."""
    if plan.tier_id and plan.tier.threshold > member.tier.threshold:
        return {"tier": plan.tier, "tier_since": now, "below_tier_since": None}
    return {}


# The tier a value earns: the highest threshold the value reaches. ``tier_for`` is the Python
# form (the till, the data generator), ``EARNED_TIER_SQL`` the job's.
EARNED_TIER_SQL = "(SELECT MAX(t.threshold) FROM loyalty_tier t WHERE t.threshold <= {value})"


def perks_of(tier):
    """A tier's perks as the API shows them: ``[{"code", "name"}]`` in the request's language."""
    return [{"code": code, "name": str(perk_label(code))} for code in (tier.perks if tier else [])]


def has_perk(tier, perk):
    """Whether ``tier`` (None: no member) carries ``perk``: a free-delivery flag on the quote."""
    return tier is not None and perk in (tier.perks or [])


def tier_for(value, ladder, *, key=attrgetter("threshold"), default=None):
    """The highest tier of ``ladder`` (lowest threshold first) whose threshold ``value`` reaches,
    else ``default``. ``key`` reads a tier's threshold in the unit of ``value``."""
    best = default
    for tier in ladder:
        if key(tier) <= value:
            best = tier
    return best


# Moving up happens at once. The till's form: the purchase that crosses a threshold moves the
# member up (it earns at the old rate). The job's form is ``REEVALUATE_SQL``'s first case, for
# what no purchase moved: a lowered threshold, a paid membership's tier.


def can_move_up(member):
    """Whether a tier above the member's exists (if not, the till skips the qualifying sum)."""
    return any(tier.threshold > member.tier.threshold for tier in Tier.ladder())


def upgraded_tier(program, member, value, this_purchase):
    """The tier the member qualifies for now, if higher than the current one (else None).

    ``value`` is the qualifying value before this purchase (None: at the top already);
    ``this_purchase`` is the qualifying amount of the purchase not yet written.
    """
    if value is None:
        return None
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        value += 1 if this_purchase > 0 else 0
    else:
        value += this_purchase
    best = tier_for(value, Tier.ladder())
    if best is not None and best.threshold > member.tier.threshold:
        return best
    return None


# One statement per batch. For each member ({members} gives member_id, tier_id, below_since (the
# member's ``below_tier_since``), value and held: the temporary table above in the job, the
# receipts themselves in the benchmark's one statement): the tier the value earns now and the
# tier it held during the grace period, each raised to a paid membership's; then move up to the
# first, fall to the second when it is below the current tier and the fall is dated before the
# grace period (by the receipts, ``REACHED_SQL``, or by the run that first saw it), and mark or
# clear ``below_tier_since`` (since when a run first saw the value below the tier). Tier
# thresholds are unique, so a threshold names its tier.
REEVALUATE_SQL = """
UPDATE members_member SET
    tier_id = (SELECT t.id FROM loyalty_tier t WHERE t.threshold = e.new_th),
    tier_since = CASE WHEN e.new_th <> e.cur_th THEN %(as_of)s
        ELSE members_member.tier_since END,
    below_tier_since = CASE WHEN e.tgt_th >= e.new_th THEN NULL
        WHEN e.new_th <> e.cur_th THEN %(as_of)s
        ELSE COALESCE(members_member.below_tier_since, %(as_of)s) END
FROM (
    SELECT d.member_id, d.cur_th, d.tgt_th,
        CASE WHEN d.tgt_th > d.cur_th THEN d.tgt_th
             WHEN d.held_th < d.cur_th AND d.below_since <= %(cutoff)s THEN d.held_th
             WHEN d.held_th < d.cur_th AND {reached} THEN d.held_th
             ELSE d.cur_th END AS new_th
    FROM (
        SELECT c.member_id, c.cur_th, c.below_since,
            CASE WHEN c.live_th IS NOT NULL AND c.live_th > c.earned_th
                 THEN c.live_th ELSE c.earned_th END AS tgt_th,
            CASE WHEN c.grace_th IS NOT NULL AND c.grace_th > c.held_earned_th
                 THEN c.grace_th ELSE c.held_earned_th END AS held_th
        FROM (
            SELECT q.member_id, q.below_since, ct.threshold AS cur_th,
                {earned} AS earned_th,
                {held_earned} AS held_earned_th,
                {live_now} AS live_th,
                {live_in_grace} AS grace_th
            FROM ({members}) q
            JOIN loyalty_tier ct ON ct.id = q.tier_id
        ) c
    ) d
) e
WHERE members_member.id = e.member_id AND (
    e.new_th <> e.cur_th
    OR (e.tgt_th >= e.cur_th AND members_member.below_tier_since IS NOT NULL)
    OR (e.tgt_th < e.cur_th AND members_member.below_tier_since IS NULL)
)
"""

# The members of one id range [low, high) with their qualifying values, from the run's table.
BATCH_MEMBERS_SQL = """
SELECT m.id AS member_id, m.tier_id AS tier_id, m.below_tier_since AS below_since,
       COALESCE(v.value, 0) AS value, COALESCE(v.held, 0) AS held
FROM members_member m
LEFT JOIN tier_qualifying v ON v.member_id = m.id
WHERE m.id >= %(low)s AND m.id < %(high)s AND m.status <> 'merged'
"""


def reevaluate_sql(members, program):
    """The batch statement over ``members`` (a SELECT of member_id, tier_id, below_since, value
    and held)."""
    reached = REACHED_SQL.format(member="d.member_id", threshold="d.cur_th", **_values(program))
    return REEVALUATE_SQL.format(
        members=members,
        reached=reached,
        earned=EARNED_TIER_SQL.format(value="q.value"),
        held_earned=EARNED_TIER_SQL.format(value="q.held"),
        live_now=MEMBERSHIP_TIER_SQL.format(when=LIVE_NOW),
        live_in_grace=MEMBERSHIP_TIER_SQL.format(when=LIVE_IN_GRACE),
    )


def qualifying_select(program):
    """``QUALIFYING_SELECT`` for the program's measure (spend or count) and window."""
    return QUALIFYING_SELECT.format(**_values(program))


@retry_on_conflict
@transaction.atomic(durable=True)
def _reevaluate_batch(low, high, program, as_of):
    with connection.cursor() as cursor:
        cursor.execute(
            reevaluate_sql(BATCH_MEMBERS_SQL, program),
            {**moments(program, as_of), "low": low, "high": high},
        )
        changed = cursor.rowcount
    if changed and webhook_events.wants(Event.TIER_CHANGED):
        webhook_events.execute(*webhook_events.tier_changes_sql(low=low, high=high, as_of=as_of))
    return changed


@contextlib.contextmanager
def qualifying_values(program, as_of):
    """The run's table of qualifying values (``QUALIFYING_SELECT``), dropped when the run ends."""
    # Dropped by its schema-qualified name: never a permanent table that happens to share it.
    temporary = temp_table(QUALIFYING_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temporary}")  # left by a crashed run
        cursor.execute(
            f"CREATE TEMPORARY TABLE {QUALIFYING_TABLE} AS {qualifying_select(program)}",
            moments(program, as_of),
        )
        cursor.execute(
            f"CREATE UNIQUE INDEX {QUALIFYING_TABLE}_member ON {QUALIFYING_TABLE} (member_id)"
        )
        cursor.execute(f"ANALYZE {QUALIFYING_TABLE}")  # autovacuum never sees temporary tables
    try:
        yield
    finally:
        # A lost connection took the table with it: its error must not hide the run's own.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {temporary}")


def reevaluate_tiers(*, as_of, run=None, batch_size=BATCH_MEMBERS):
    """Re-qualify every member as of ``as_of``: move up at once; fall only after the grace period.

    A member moves up to the tier their rolling value (spend net of refunds over the window, or
    purchase count) earns now. They fall only when it has stayed below their tier's threshold
    for the whole grace period (default 30 days): to the highest tier the value reached at some
    moment of that period, so going back above during the grace starts a new one, and several
    tiers can be left at once. A refund lowers the value from its own moment. When the receipts
    cannot date the fall (a raised threshold, a tier set by hand), the grace runs from the run
    that first saw the member below. A paid membership holds its tier while live and through
    the grace period after it ends.
    """
    program = ProgramSettings.load()
    with qualifying_values(program, as_of):
        for low, high in member_ranges(batch_size):
            changed = _reevaluate_batch(low, high, program, as_of)
            progress.checkpoint(run, changed, members=changed)


# What a member must do, and by when, to keep their tier and to reach the next: the till's rule
# (``qualifying_sql``: the purchases in the window ending at a moment, each by its qualifying
# amount, or their number) played forward as the window moves on, with the grace period of the
# nightly job. For the member's own page; the same purchases ``qualifying_value`` sums.


def _window_purchases(program, member_id, now):
    """(leaves the window at, what it counts) for each purchase in the window ending ``now``,
    soonest to leave first: the rows whose sum is ``qualifying_value`` at ``now``."""
    rows = Purchase.objects.filter(
        member_id=member_id, occurred_at__gt=window_start(program, now), occurred_at__lte=now
    ).order_by("occurred_at", "id")
    days = timedelta(days=program.tier_window_days)
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        return [
            (occurred_at + days, 1)
            for occurred_at in rows.filter(qualifying_amount__gt=0).values_list(
                "occurred_at", flat=True
            )
        ]
    return [
        (occurred_at + days, money(amount))
        for occurred_at, amount in rows.values_list("occurred_at", "qualifying_amount")
    ]


def tier_outlook(program, member, now):
    """The member's qualifying value now and two goals, for the member's own page:

    - ``keep`` (None at the lowest tier): the value falls below the tier's threshold at
      ``falls_at`` (a purchase leaves the window, or it is below already); buying ``amount``
      more (spend, or purchases) by ``by`` (that moment plus the grace period) keeps the tier;
    - ``reach`` (None at the top): ``amount`` more moves the member up at once, on the purchase
      that crosses the threshold, if bought before ``by`` (when the next purchase leaves the
      window and more is needed; None when nothing is in the window to leave).

    A tier held through a paid membership is not the purchases' to keep: ``keep`` is None.
    """
    leaving = _window_purchases(program, member.pk, now)
    zero = 0 if program.tier_qualification == ProgramSettings.Qualification.COUNT else money(0)
    value = sum((counted for _at, counted in leaving), zero)
    grace = timedelta(days=program.downgrade_grace_days)
    ladder = Tier.ladder()
    tier = next((t for t in ladder if t.pk == member.tier_id), member.tier)
    keep = None
    lowest = ladder[0] if ladder else tier
    if tier.threshold > lowest.threshold and not _tier_from_membership(member, tier, now):
        if value < tier.threshold:
            falls_at, left = member.below_tier_since or now, value
        else:
            falls_at, left = None, value
            for leaves_at, counted in leaving:
                left -= counted
                if left < tier.threshold:
                    falls_at = leaves_at
                    break
        if falls_at is not None:
            keep = {
                "tier": tier,
                "amount": tier.threshold - left,
                "falls_at": falls_at,
                "by": falls_at + grace,
            }
    upcoming = next((t for t in ladder if t.threshold > tier.threshold), None)
    reach = None
    if upcoming is not None:
        reach = {
            "tier": upcoming,
            "amount": max(upcoming.threshold - value, zero),
            "by": leaving[0][0] if leaving else None,
        }
    return {"value": value, "keep": keep, "reach": reach}


def _tier_from_membership(member, tier, now):
    """Whether a live paid membership gives the member this tier (``MEMBERSHIP_TIER_SQL``'s
    ``LIVE_NOW``, for one member)."""
    return Membership.objects.filter(
        member_id=member.pk,
        plan__tier__threshold__gte=tier.threshold,
        started_at__lte=now,
        status__in=["trial", "active"],
        period_end__gt=now,
    ).exists()

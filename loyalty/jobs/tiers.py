"""The nightly tier re-evaluation: upgrade at once, downgrade only after the grace period."""

import contextlib
from datetime import timedelta

from django.db import DatabaseError, connection, transaction

from loyalty.jobs import runner
from loyalty.jobs.sql import dt, is_postgres, member_ranges, minus_days
from loyalty.models import ProgramSettings
from loyalty.services.locking import retry_on_conflict

BATCH_MEMBERS = 10_000

# For every member who bought in the window or in the grace period before it, two qualifying
# values (spend net of refunds, or the number of purchases), computed once per run into a
# temporary table of this connection: ``value``, the rolling value now, and ``held``, the most
# it was at any moment of the grace period (as of the grace period's start, and just after each
# purchase since). ``held`` is the rule of SPEC's "falls only after N days below its threshold":
# a member keeps the highest tier their rolling value reached at some moment of the last N days,
# so a member who went back above during the grace period starts a new one, and a member whose
# value left the window long ago falls on the first run whether or not a run saw them below.
# One pass over the window's receipts instead of a probe per member in every batch.
QUALIFYING_TABLE = "tier_qualifying"
QUALIFYING_SELECT = """
SELECT s.member_id, COALESCE(MAX(CASE WHEN s.part = 0 THEN s.value END), 0) AS value,
       MAX(s.value) AS held
FROM (
    SELECT p.member_id, 0 AS part, {value} AS value
    FROM loyalty_purchase p
    WHERE p.member_id IS NOT NULL AND p.occurred_at > %(since)s AND p.occurred_at <= %(as_of)s
    GROUP BY p.member_id
    UNION ALL
    SELECT p.member_id, 1 AS part, {value} AS value
    FROM loyalty_purchase p
    WHERE p.member_id IS NOT NULL
        AND p.occurred_at > %(cutoff_since)s AND p.occurred_at <= %(cutoff)s
    GROUP BY p.member_id
    UNION ALL
    SELECT q.member_id, 2 AS part, {value} AS value
    FROM loyalty_purchase q
    JOIN loyalty_purchase p ON p.member_id = q.member_id
        AND p.occurred_at <= q.occurred_at AND p.occurred_at > {window_start}
    WHERE q.member_id IS NOT NULL AND q.occurred_at > %(cutoff)s AND q.occurred_at <= %(as_of)s
    GROUP BY q.id, q.member_id
) s
GROUP BY s.member_id
"""

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

# One statement per batch. For each member ({members} gives member_id, tier_id, value and held:
# the temporary table above in the job, the receipts themselves in the benchmark's one
# statement): the tier the value earns now and the tier it held during the grace period, each
# raised to a paid membership's; then move up to the first, fall to the second when it is below
# the current tier, and mark or clear ``below_tier_since`` (since when a run first saw the value
# below the tier: shown to staff, not used by the rule). Tier thresholds are unique, so a
# threshold names its tier.
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
             WHEN d.held_th < d.cur_th THEN d.held_th
             ELSE d.cur_th END AS new_th
    FROM (
        SELECT c.member_id, c.cur_th,
            CASE WHEN c.live_th IS NOT NULL AND c.live_th > c.earned_th
                 THEN c.live_th ELSE c.earned_th END AS tgt_th,
            CASE WHEN c.grace_th IS NOT NULL AND c.grace_th > c.held_earned_th
                 THEN c.grace_th ELSE c.held_earned_th END AS held_th
        FROM (
            SELECT q.member_id, ct.threshold AS cur_th,
                (SELECT MAX(t.threshold) FROM loyalty_tier t
                 WHERE t.threshold <= q.value) AS earned_th,
                (SELECT MAX(t.threshold) FROM loyalty_tier t
                 WHERE t.threshold <= q.held) AS held_earned_th,
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
SELECT m.id AS member_id, m.tier_id AS tier_id, COALESCE(v.value, 0) AS value,
       COALESCE(v.held, 0) AS held
FROM members_member m
LEFT JOIN tier_qualifying v ON v.member_id = m.id
WHERE m.id >= %(low)s AND m.id < %(high)s AND m.status <> 'merged'
"""

SPEND = "ROUND(COALESCE(SUM(p.qualifying_amount), 0), 2)"
COUNT = "COALESCE(SUM(CASE WHEN p.qualifying_amount > 0 THEN 1 ELSE 0 END), 0)"


def reevaluate_sql(members):
    """The batch statement over ``members`` (a SELECT of member_id, tier_id, value, held)."""
    return REEVALUATE_SQL.format(
        members=members,
        live_now=MEMBERSHIP_TIER_SQL.format(when=LIVE_NOW),
        live_in_grace=MEMBERSHIP_TIER_SQL.format(when=LIVE_IN_GRACE),
    )


def qualifying_select(program):
    """``QUALIFYING_SELECT`` for the program's measure (spend or count) and window."""
    value = COUNT if program.tier_qualification == ProgramSettings.Qualification.COUNT else SPEND
    window_start = minus_days("q.occurred_at", program.tier_window_days)
    return QUALIFYING_SELECT.format(value=value, window_start=window_start)


def moments(program, as_of):
    """The statements' named times: now, the window's start, the grace period's start and the
    start of the window that ended then."""
    since = as_of - timedelta(days=program.tier_window_days)
    cutoff = as_of - timedelta(days=program.downgrade_grace_days)
    cutoff_since = cutoff - timedelta(days=program.tier_window_days)
    return {
        "as_of": dt(as_of),
        "since": dt(since),
        "cutoff": dt(cutoff),
        "cutoff_since": dt(cutoff_since),
    }


@retry_on_conflict
@transaction.atomic(durable=True)
def _reevaluate_batch(low, high, program, as_of):
    with connection.cursor() as cursor:
        cursor.execute(
            reevaluate_sql(BATCH_MEMBERS_SQL),
            {**moments(program, as_of), "low": low, "high": high},
        )
        return cursor.rowcount


@contextlib.contextmanager
def qualifying_values(program, as_of):
    """The run's table of qualifying values (``QUALIFYING_SELECT``), dropped when the run ends."""
    # Dropped by its schema-qualified name: never a permanent table that happens to share it.
    temporary = ("pg_temp." if is_postgres() else "temp.") + QUALIFYING_TABLE
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
    tiers can be left at once. A paid membership holds its tier while live and through the
    grace period after it ends.
    """
    program = ProgramSettings.load()
    with qualifying_values(program, as_of):
        for low, high in member_ranges(batch_size):
            changed = _reevaluate_batch(low, high, program, as_of)
            runner.checkpoint(run, changed, members=changed)

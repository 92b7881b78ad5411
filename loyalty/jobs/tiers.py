"""The nightly tier re-evaluation: upgrade at once, downgrade only after the grace period."""

import contextlib
from datetime import timedelta

from django.db import DatabaseError, connection, transaction

from loyalty.jobs import runner
from loyalty.jobs.sql import dt, is_postgres, member_ranges
from loyalty.models import ProgramSettings
from loyalty.services.locking import retry_on_conflict

BATCH_MEMBERS = 10_000

# The qualifying value of every member who bought in the window (spend net of refunds, or the
# number of purchases), computed once per run into a temporary table of this connection: one
# pass over the window's receipts instead of a probe per member in every batch.
QUALIFYING_TABLE = "tier_qualifying"
QUALIFYING_SQL = """
CREATE TEMPORARY TABLE tier_qualifying AS
SELECT p.member_id, {value} AS value
FROM loyalty_purchase p
WHERE p.member_id IS NOT NULL AND p.occurred_at > %s AND p.occurred_at <= %s
GROUP BY p.member_id
"""

# One statement per batch. For each member: the qualifying value ({members} gives it: the
# temporary table above in the job, the receipts themselves in the benchmark's one statement),
# the tier it earns, raised to the tier of a live paid membership; then upgrade, start or clear
# the grace period, or fall once the grace has passed. Tier thresholds are unique, so a
# threshold names its tier.
REEVALUATE_SQL = """
UPDATE members_member SET
    tier_id = CASE
        WHEN d.tgt_th > d.cur_th
             OR (d.tgt_th < d.cur_th AND members_member.below_tier_since <= %s)
        THEN (SELECT t.id FROM loyalty_tier t WHERE t.threshold = d.tgt_th)
        ELSE members_member.tier_id END,
    tier_since = CASE
        WHEN d.tgt_th > d.cur_th
             OR (d.tgt_th < d.cur_th AND members_member.below_tier_since <= %s) THEN %s
        ELSE members_member.tier_since END,
    below_tier_since = CASE
        WHEN d.tgt_th >= d.cur_th OR members_member.below_tier_since <= %s THEN NULL
        ELSE COALESCE(members_member.below_tier_since, %s) END
FROM (
    SELECT q.member_id, ct.threshold AS cur_th,
        CASE WHEN mt.threshold IS NOT NULL
                  AND (et.threshold IS NULL OR mt.threshold > et.threshold)
             THEN mt.threshold ELSE et.threshold END AS tgt_th
    FROM ({members}) q
    JOIN loyalty_tier ct ON ct.id = q.tier_id
    LEFT JOIN loyalty_tier et ON et.id = (
        SELECT t.id FROM loyalty_tier t WHERE t.threshold <= q.value
        ORDER BY t.threshold DESC LIMIT 1)
    LEFT JOIN loyalty_membership ms
        ON ms.member_id = q.member_id AND ms.status IN ('trial', 'active') AND ms.period_end > %s
    LEFT JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
    LEFT JOIN loyalty_tier mt ON mt.id = pl.tier_id
) d
WHERE members_member.id = d.member_id AND (
    d.tgt_th > d.cur_th
    OR (d.tgt_th = d.cur_th AND members_member.below_tier_since IS NOT NULL)
    OR (d.tgt_th < d.cur_th AND (members_member.below_tier_since IS NULL
                                 OR members_member.below_tier_since <= %s))
)
"""

# The members of one id range [low, high) with their qualifying value, from the run's table.
BATCH_MEMBERS_SQL = """
SELECT m.id AS member_id, m.tier_id AS tier_id, COALESCE(v.value, 0) AS value
FROM members_member m
LEFT JOIN tier_qualifying v ON v.member_id = m.id
WHERE m.id >= %s AND m.id < %s AND m.status <> 'merged'
"""

SPEND = "ROUND(COALESCE(SUM(p.qualifying_amount), 0), 2)"
COUNT = "COALESCE(SUM(CASE WHEN p.qualifying_amount > 0 THEN 1 ELSE 0 END), 0)"


@retry_on_conflict
@transaction.atomic(durable=True)
def _reevaluate_batch(low, high, as_of, cutoff):
    with connection.cursor() as cursor:
        cursor.execute(
            REEVALUATE_SQL.format(members=BATCH_MEMBERS_SQL),
            [dt(cutoff), dt(cutoff), dt(as_of), dt(cutoff), dt(as_of)]
            + [low, high]
            + [dt(as_of), dt(cutoff)],
        )
        return cursor.rowcount


@contextlib.contextmanager
def qualifying_values(value, since, as_of):
    """The run's table of qualifying values (``QUALIFYING_SQL``), dropped when the run ends."""
    # Dropped by its schema-qualified name: never a permanent table that happens to share it.
    temporary = ("pg_temp." if is_postgres() else "temp.") + QUALIFYING_TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temporary}")  # left by a crashed run
        cursor.execute(QUALIFYING_SQL.format(value=value), [dt(since), dt(as_of)])
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

    A member below their tier's threshold is marked (below since); if still below when the
    grace period (default 30 days) has passed, they fall to the tier they qualify for. A live
    paid membership holds its tier whatever the spend.
    """
    program = ProgramSettings.load()
    since = as_of - timedelta(days=program.tier_window_days)
    cutoff = as_of - timedelta(days=program.downgrade_grace_days)
    value = COUNT if program.tier_qualification == ProgramSettings.Qualification.COUNT else SPEND
    with qualifying_values(value, since, as_of):
        for low, high in member_ranges(batch_size):
            changed = _reevaluate_batch(low, high, as_of, cutoff)
            runner.checkpoint(run, changed, members=changed)

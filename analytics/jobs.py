"""The ``refresh_analytics`` job (SPEC section 6): rebuild what the analytics dashboard reads.

Two steps, each set-based SQL:

1. Daily figures per (store-local day, store), range-replaced: the rows of a range of days are
   deleted and inserted again from the source tables in one transaction, so a re-run changes
   nothing. A nightly run redoes the last LOOKBACK_DAYS days (and any nights it missed); the
   first run, or ``full=True``, rebuilds every day in chunks of ``batch_size`` days, one
   transaction each.
2. Snapshots as of the end of the last complete day: one row per member in the working table
   ``MemberStats`` (purchases, windows, RFM segment), and from it the small tables of period
   figures, cohorts and segments; the lifetime-value models (analytics.clv) are fitted on a sample
   and applied to every buyer. One transaction, so the dashboard sees the old snapshot or the new.
"""

import time
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from analytics import clv, effect, matching, whatif
from analytics.models import PERIODS, DailyFigures, SegmentFigures, Snapshot
from analytics.sql import Dialect
from loyalty.engine import progress
from loyalty.engine.db import by_dialect, dt
from loyalty.engine.money import money
from loyalty.models import LedgerEntry, ProgramSettings, Purchase, Store
from members.models import Member
from surveys.models import SurveyResponse

# A nightly run redoes this many days before the last complete day too: receipts sent late by a
# till, refunds and survey answers of the last days. Older history loaded later needs a full run.
LOOKBACK_DAYS = 3
# Days per transaction of a full rebuild: a month of receipts is a few hundred thousand rows at
# 10 million receipts over two years, a statement of a few seconds.
CHUNK_DAYS = 31
# Zones are at most 14 hours ahead of UTC (and 12 behind): source rows are read from this much
# before the first local day's UTC midnight.
ZONE_MARGIN = timedelta(hours=14)
# Cohorts: enrolment months shown, each followed for as many months.
COHORT_MONTHS = 24
# Members compared before and after enrolling: enrolled between these many days ago.
COMPARE_DAYS = 90
COMPARE_SINCE_DAYS = 730
# The lifetime-value models are fitted on at most this many members, predicted for every buyer
# in chunks of PREDICT_CHUNK.
FIT_SAMPLE = 50_000
PREDICT_CHUNK = 100_000
HORIZON_DAYS = 365

ZERO_FLOWS = {
    "purchases": "0",
    "member_purchases": "0",
    "revenue": "0",
    "member_revenue": "0",
    "buying_members": "0",
    "refunds": "0",
    "refunded": "0",
    "member_refunded": "0",
    "new_members": "0",
    "points_earned": "0",
    "points_bonus": "0",
    "points_reversed": "0",
    "points_redeemed": "0",
    "points_returned": "0",
    "points_expired": "0",
    "points_adjusted": "0",
    "promoters": "0",
    "passives": "0",
    "detractors": "0",
}
FLOW_COLUMNS = list(ZERO_FLOWS)


def _select(day, store, **columns):
    values = {**ZERO_FLOWS, **columns}
    listed = ", ".join(f"{values[name]} AS {name}" for name in FLOW_COLUMNS)
    return f"SELECT {day} AS day, {store} AS store_id, {listed}"


def _points(kind, sign=1):
    expression = f"CASE WHEN e.kind = '{kind}' THEN e.points ELSE 0 END"
    return f"SUM({expression})" if sign > 0 else f"-SUM({expression})"


def daily_sql(sql):
    """The statement that inserts the daily rows of local days [%s, %s] from source rows in
    [%s, %s): parameters (first_day, last_day, since, until) after the five sources' own."""
    member_amount = "CASE WHEN p.member_id IS NULL THEN 0 ELSE {} END"
    purchases = _select(
        sql.local_date("p.occurred_at", "s.time_zone"),
        "p.store_id",
        purchases="COUNT(*)",
        member_purchases="COUNT(p.member_id)",
        revenue="SUM(p.amount)",
        member_revenue=f"SUM({member_amount.format('p.amount')})",
        buying_members="COUNT(DISTINCT p.member_id)",
    )
    refunds = _select(
        sql.local_date("r.created_at", "s.time_zone"),
        "r.store_id",
        refunds="COUNT(*)",
        refunded="SUM(r.amount)",
        member_refunded=f"SUM({member_amount.format('r.amount')})",
    )
    members = _select(
        sql.local_date("m.enrolled_at", sql.zone_of("s")),
        "m.enrolled_store_id",
        new_members="COUNT(*)",
    )
    ledger = _select(
        sql.local_date("e.created_at", sql.zone_of("s")),
        "e.store_id",
        points_earned=_points("earn"),
        points_bonus=_points("bonus"),
        points_reversed=_points("refund_reversal", -1),
        points_redeemed=_points("redeem", -1),
        points_returned=_points("refund_return"),
        points_expired=_points("expire", -1),
        points_adjusted="SUM(CASE WHEN e.kind IN ('adjust', 'merge') THEN e.points ELSE 0 END)",
    )
    nps = _select(
        sql.local_date("a.answered_at", sql.zone_of("s")),
        "a.store_id",
        promoters="""SUM(CASE WHEN a."group" = 'promoter' THEN 1 ELSE 0 END)""",
        passives="""SUM(CASE WHEN a."group" = 'passive' THEN 1 ELSE 0 END)""",
        detractors="""SUM(CASE WHEN a."group" = 'detractor' THEN 1 ELSE 0 END)""",
    )
    sums = ", ".join(f"SUM({name})" for name in FLOW_COLUMNS)
    # Each source is filtered by its own time column (indexed), then by the local day outside.
    return f"""
        INSERT INTO analytics_dailyfigures (day, store_id, {", ".join(FLOW_COLUMNS)})
        SELECT day, store_id, {sums} FROM (
            {purchases}
            FROM loyalty_purchase p JOIN loyalty_store s ON s.id = p.store_id
            WHERE p.occurred_at >= %s AND p.occurred_at < %s
            GROUP BY 1, 2
          UNION ALL
            {refunds}
            FROM loyalty_refund r JOIN loyalty_purchase p ON p.id = r.purchase_id
              JOIN loyalty_store s ON s.id = r.store_id
            WHERE r.created_at >= %s AND r.created_at < %s
            GROUP BY 1, 2
          UNION ALL
            {members}
            FROM members_member m LEFT JOIN loyalty_store s ON s.id = m.enrolled_store_id
            WHERE m.enrolled_at >= %s AND m.enrolled_at < %s AND m.status <> 'merged'
            GROUP BY 1, 2
          UNION ALL
            {ledger}
            FROM (
                -- The store of each entry by primary-key look-ups: joining the receipts, lots
                -- and members tables whole cost a scan of each per chunk.
                SELECT e.kind, e.points, e.created_at, COALESCE(
                    (SELECT p.store_id FROM loyalty_purchase p WHERE p.id = e.purchase_id),
                    (SELECT lp.store_id FROM loyalty_pointslot l
                       JOIN loyalty_purchase lp ON lp.id = l.purchase_id
                     WHERE l.id = e.lot_id AND e.purchase_id IS NULL),
                    (SELECT m.enrolled_store_id FROM members_member m WHERE m.id = e.member_id)
                ) AS store_id
                FROM loyalty_ledgerentry e
                WHERE e.created_at >= %s AND e.created_at < %s
            ) e LEFT JOIN loyalty_store s ON s.id = e.store_id
            GROUP BY 1, 2
          UNION ALL
            {nps}
            FROM surveys_surveyresponse a JOIN surveys_survey v ON v.id = a.survey_id
              LEFT JOIN loyalty_store s ON s.id = a.store_id
            WHERE v.kind = 'nps' AND a.score IS NOT NULL
              AND a.answered_at >= %s AND a.answered_at < %s
            GROUP BY 1, 2
        ) flows
        WHERE day >= %s AND day <= %s
        GROUP BY day, store_id
    """  # noqa: S608 (column lists and expressions are ours, values are parameters)


@transaction.atomic(durable=True)
def _replace_days(sql, first_day, last_day, until):
    """Delete and rebuild the daily rows of [first_day, last_day] from rows before ``until``."""
    # Source rows are read by their (indexed) time column over the days' span, widened by the
    # zone margin on both sides, so a chunk reads a chunk's rows rather than all rows since.
    since = _utc_midnight(first_day) - ZONE_MARGIN
    until = min(until, _utc_midnight(last_day + timedelta(days=1)) + ZONE_MARGIN)
    window = [dt(since), dt(until)]
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM analytics_dailyfigures WHERE day >= %s AND day <= %s",
            [first_day, last_day],
        )
        cursor.execute(daily_sql(sql), window * 5 + [first_day, last_day])
        return cursor.rowcount


def _utc_midnight(day):
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _earliest_day(marks=None):
    """The first local day any source row can fall on (a day early, for zones behind UTC);
    with ``marks``, only rows added since they were taken (ids above them)."""
    marks = marks or {}
    sources = [
        (Purchase, "purchase", "occurred_at"),
        (Member, "member", "enrolled_at"),
        (LedgerEntry, "entry", "created_at"),
    ]
    moments = [
        model.objects.filter(pk__gt=marks.get(name, 0)).aggregate(v=Min(column))["v"]
        for model, name, column in sources
    ]
    if not marks:
        moments.append(SurveyResponse.objects.aggregate(v=Min("answered_at"))["v"])
    moments = [moment for moment in moments if moment is not None]
    if not moments:
        return None
    return (min(moments) - timedelta(days=1)).date()


def _marks():
    """The highest ids of the sources now: rows above them next time were added since (a
    history import, a till that sends receipts days late)."""
    return {
        "purchase": Purchase.objects.aggregate(v=Max("pk"))["v"] or 0,
        "member": Member.objects.aggregate(v=Max("pk"))["v"] or 0,
        "entry": LedgerEntry.objects.aggregate(v=Max("pk"))["v"] or 0,
    }


def _replace_range(sql, first, through, as_of, batch_size, run):
    chunk = timedelta(days=batch_size or CHUNK_DAYS)
    day = first
    while day <= through:
        last = min(day + chunk - timedelta(days=1), through)
        rows = _replace_days(sql, day, last, as_of)
        progress.checkpoint(run, rows, daily_rows=rows)
        day = last + timedelta(days=1)


def refresh_daily(*, as_of, through, full, batch_size, run=None):
    """Rebuild the daily figures up to ``through`` (a local date) from rows before ``as_of``.

    Returns the first day rebuilt (None when there is nothing to aggregate), whether every
    day was rebuilt, and the source marks to keep with the snapshot."""
    sql = Dialect(as_of, Store.objects.values_list("time_zone", flat=True).distinct())
    previous = Snapshot.objects.filter(pk=1).first()
    started = time.monotonic()
    marks = _marks()
    if full or previous is None:
        # A full rebuild that stops half-way must be a full rebuild again next time: the
        # snapshot goes first, so the dashboard says "not built yet" rather than half-figures.
        with transaction.atomic(durable=True):
            Snapshot.objects.all().delete()
            DailyFigures.objects.all().delete()
        first = _earliest_day()
        if first is None:
            return None, True, marks
        first = min(first, through)
        _replace_range(sql, first, through, as_of, batch_size, run)
        _timing(run, daily_ms=_ms(started))
        return first, True, marks
    # Nightly: the last few days, every night since the last run if some were missed, and back
    # to the earliest day of rows added since the last run (an import of older history).
    first = min(through, previous.through) - timedelta(days=LOOKBACK_DAYS)
    late = _earliest_day(previous.marks)
    if late is not None:
        first = min(first, late)
    _replace_range(sql, first, through, as_of, batch_size, run)
    _timing(run, daily_ms=_ms(started))
    return first, False, marks


def _member_stats_sql(sql):
    moment = sql.moment_param()
    windows = []
    for days in PERIODS:
        windows += [
            f"SUM(CASE WHEN p.occurred_at >= %s THEN 1 ELSE 0 END) AS n{days}",
            f"SUM(CASE WHEN p.occurred_at >= %s THEN p.amount ELSE 0 END) AS r{days}",
            f"SUM(CASE WHEN p.occurred_at >= %s AND p.occurred_at < %s THEN 1 ELSE 0 END)"
            f" AS prev{days}",
        ]
    since_enrolment = sql.days_between("m2.enrolled_at", "p.occurred_at")
    # Recency (R) and frequency (F) scores from 1 to 5 by percentile among buyers; members with
    # the same value share a score, so the result does not depend on row order.
    score = (
        "CASE WHEN {rank} >= 0.8 THEN 5 WHEN {rank} >= 0.6 THEN 4 WHEN {rank} >= 0.4 THEN 3 "
        "WHEN {rank} >= 0.2 THEN 2 ELSE 1 END"
    )
    recency = score.format(
        rank="PERCENT_RANK() OVER (PARTITION BY b.purchases > 0 ORDER BY b.last_age DESC)"
    )
    frequency = score.format(
        rank="PERCENT_RANK() OVER (PARTITION BY b.purchases > 0 ORDER BY b.purchases)"
    )
    stat_columns = (
        "member_id, store_id, enrolled_at, cohort, purchases, revenue, first_age, last_age, "
        + ", ".join(f"n{d}, r{d}, prev{d}" for d in PERIODS)
        + ", before_enrolment, after_enrolment, points"
    )
    return f"""
        INSERT INTO analytics_memberstats ({stat_columns}, segment)
        SELECT {stat_columns},
            CASE WHEN purchases = 0 THEN 'never'
                 WHEN r >= 4 AND f >= 4 THEN 'champions'
                 WHEN r >= 3 AND f >= 3 THEN 'loyal'
                 WHEN r >= 4 THEN 'promising'
                 WHEN r = 3 THEN 'attention'
                 WHEN f >= 3 THEN 'at_risk'
                 WHEN r = 2 THEN 'hibernating'
                 ELSE 'lost' END
        FROM (
            SELECT b.*, {recency} AS r, {frequency} AS f FROM (
                SELECT m.id AS member_id, m.enrolled_store_id AS store_id,
                    m.enrolled_at AS enrolled_at, {sql.month_number("m.enrolled_at")} AS cohort,
                    COALESCE(a.purchases, 0) AS purchases, COALESCE(a.revenue, 0) AS revenue,
                    a.first_age AS first_age, a.last_age AS last_age,
                    {
        ", ".join(
            f"COALESCE(a.n{d}, 0) AS n{d}, COALESCE(a.r{d}, 0) AS r{d}, "
            f"COALESCE(a.prev{d}, 0) AS prev{d}"
            for d in PERIODS
        )
    },
                    COALESCE(a.before_enrolment, 0) AS before_enrolment,
                    COALESCE(a.after_enrolment, 0) AS after_enrolment,
                    m.points_balance - COALESCE(later.points, 0) AS points
                FROM members_member m LEFT JOIN (
                    SELECT p.member_id, COUNT(*) AS purchases, SUM(p.amount) AS revenue,
                        {sql.days_between("MIN(p.occurred_at)", moment)} AS first_age,
                        {sql.days_between("MAX(p.occurred_at)", moment)} AS last_age,
                        {", ".join(windows)},
                        SUM(CASE WHEN {since_enrolment} >= -{COMPARE_DAYS}
                                  AND {since_enrolment} < 0 THEN p.amount ELSE 0 END)
                            AS before_enrolment,
                        SUM(CASE WHEN {since_enrolment} >= 0
                                  AND {since_enrolment} < {COMPARE_DAYS} THEN p.amount ELSE 0 END)
                            AS after_enrolment
                    FROM loyalty_purchase p JOIN members_member m2 ON m2.id = p.member_id
                    WHERE p.member_id IS NOT NULL AND p.occurred_at < %s
                    GROUP BY p.member_id
                ) a ON a.member_id = m.id
                -- The balance as of the snapshot: today's cached balance less what came after.
                LEFT JOIN (
                    SELECT member_id, SUM(points) AS points FROM loyalty_ledgerentry
                    WHERE created_at >= %s GROUP BY member_id
                ) later ON later.member_id = m.id
                WHERE m.enrolled_at < %s AND m.status <> 'merged'
            ) b
        ) scored
    """  # noqa: S608


def _member_stats_params(end):
    params = [dt(end), dt(end)]
    for days in PERIODS:
        start = end - timedelta(days=days)
        params += [dt(start), dt(start), dt(start - timedelta(days=days)), dt(start)]
    return params + [dt(end), dt(end), dt(end)]


def _period_sql():
    parts = []
    for days in PERIODS:
        parts.append(
            f"""
            SELECT store_id, {days}, COUNT(*),
                SUM(CASE WHEN n{days} > 0 THEN 1 ELSE 0 END), SUM(n{days}), SUM(r{days}),
                SUM(CASE WHEN n{days} >= 2 THEN 1 ELSE 0 END),
                SUM(CASE WHEN prev{days} > 0 THEN 1 ELSE 0 END),
                SUM(CASE WHEN prev{days} > 0 AND n{days} > 0 THEN 1 ELSE 0 END),
                SUM(CASE WHEN enrolled_at >= %s AND enrolled_at < %s THEN 1 ELSE 0 END),
                SUM(CASE WHEN enrolled_at >= %s AND enrolled_at < %s AND before_enrolment > 0
                    THEN 1 ELSE 0 END),
                SUM(CASE WHEN enrolled_at >= %s AND enrolled_at < %s
                    THEN before_enrolment ELSE 0 END),
                SUM(CASE WHEN enrolled_at >= %s AND enrolled_at < %s
                    THEN after_enrolment ELSE 0 END),
                SUM(points)
            FROM analytics_memberstats GROUP BY store_id"""  # noqa: S608
        )
    return (
        "INSERT INTO analytics_periodfigures (store_id, days, members, buyers, purchases, "
        "revenue, repeat_buyers, previous_buyers, retained, compared, compared_with_history, "
        "spend_before, spend_after, points_outstanding) " + " UNION ALL ".join(parts)
    )


# Every (store, member) pair with a receipt, up to the rebuild: "bought at" in segments. In the
# order of the (store, member) index, which yields them sorted.
STORE_BUYERS_SQL = """
    INSERT INTO analytics_storebuyer (store_id, member_id)
    SELECT DISTINCT store_id, member_id FROM loyalty_purchase WHERE member_id IS NOT NULL
"""


def refresh_snapshot(*, as_of, through, first_day, full, marks=None, run=None):
    """Rebuild the member snapshot as of the end of ``through`` (midnight, project time zone)."""
    end = timezone.make_aware(datetime.combine(through + timedelta(days=1), datetime.min.time()))
    sql = Dialect(as_of)
    # The month of the last complete day (end is the midnight after it).
    last = end - timedelta(microseconds=1)
    current_month = last.year * 12 + last.month - 1
    first_cohort = current_month - COHORT_MONTHS + 1
    cohort_start = timezone.make_aware(datetime(first_cohort // 12, first_cohort % 12 + 1, 1))
    compared = [
        dt(end - timedelta(days=COMPARE_SINCE_DAYS)),
        dt(end - timedelta(days=COMPARE_DAYS)),
    ]
    program = ProgramSettings.load()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        # DELETE, not TRUNCATE: a segment count or a campaign send reading the snapshot while
        # it is rebuilt keeps reading the previous one (MVCC) instead of waiting for the whole
        # transaction behind TRUNCATE's exclusive lock. The dead rows are autovacuum's.
        cursor.execute("DELETE FROM analytics_memberstats")
        cursor.execute("DELETE FROM analytics_storebuyer")
        started = time.monotonic()
        cursor.execute(_member_stats_sql(sql), _member_stats_params(end))
        members = cursor.rowcount
        progress.checkpoint(run, members, members=members)
        _timing(run, members_ms=_ms(started))
        started = time.monotonic()
        cursor.execute(STORE_BUYERS_SQL)
        if by_dialect(postgres=True, sqlite=False):
            # Fresh statistics for the segment counts, which read these two tables all day:
            # after the rebuild PostgreSQL would plan with the old ones (at 1M members "bought at
            # a store" expected 8,750 pairs, found 459,560 and spilled its hash to disk).
            cursor.execute("ANALYZE analytics_memberstats")
            cursor.execute("ANALYZE analytics_storebuyer")
        _timing(run, store_buyers_ms=_ms(started))
        started = time.monotonic()
        cursor.execute("DELETE FROM analytics_periodfigures")
        cursor.execute(_period_sql(), compared * 4 * len(PERIODS))
        cursor.execute("DELETE FROM analytics_cohortsize")
        cursor.execute(
            "INSERT INTO analytics_cohortsize (store_id, cohort, members) "
            "SELECT store_id, cohort, COUNT(*) FROM analytics_memberstats WHERE cohort >= %s "
            "GROUP BY store_id, cohort",
            [first_cohort],
        )
        cursor.execute("DELETE FROM analytics_cohortfigures")
        month = sql.month_number("p.occurred_at")
        cursor.execute(
            f"""
            INSERT INTO analytics_cohortfigures (store_id, cohort, months_since, buyers, revenue)
            SELECT store_id, cohort, months_since, COUNT(DISTINCT member_id), SUM(amount) FROM (
                SELECT s.store_id, s.cohort, {month} - s.cohort AS months_since,
                    p.member_id, p.amount
                FROM loyalty_purchase p JOIN analytics_memberstats s ON s.member_id = p.member_id
                WHERE p.occurred_at >= %s AND p.occurred_at < %s AND s.cohort >= %s
            ) bought
            WHERE months_since >= 0
            GROUP BY store_id, cohort, months_since
            """,  # noqa: S608
            [dt(cohort_start), dt(end), first_cohort],
        )
        _timing(run, groups_ms=_ms(started))
        started = time.monotonic()
        model = _refresh_segments(cursor)
        _timing(run, segments_ms=_ms(started))
        Snapshot.objects.update_or_create(
            pk=1,
            defaults={
                "as_of": as_of,
                "through": through,
                "full": full,
                "first_day": first_day or through,
                "point_value": program.point_value,
                "currency": program.currency,
                "model": model,
                "marks": marks or {},
                "finished_at": timezone.now(),
            },
        )
    _vacuum_snapshot()
    return members


def _vacuum_snapshot():
    """VACUUM the two tables the segment counts read all day, once the rebuild is committed
    (PostgreSQL): it frees the previous snapshot's rows, which the DELETE left dead (twice the
    table to scan until autovacuum comes, if it is on), and marks the pages all-visible, so "bought
    at a store" reads the (store, member) pairs from their index alone. Half a second at 1M
    members. Not inside a transaction (VACUUM cannot be): a test's transaction skips it."""
    if not by_dialect(postgres=True, sqlite=False) or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("VACUUM analytics_memberstats, analytics_storebuyer")


def _refresh_segments(cursor):
    """Segment figures with the lifetime-value prediction; returns the fitted models."""
    cursor.execute("SELECT COUNT(*) FROM analytics_memberstats WHERE purchases > 0")
    buyers = cursor.fetchone()[0]
    stride = max(1, -(-buyers // FIT_SAMPLE))
    cursor.execute(
        "SELECT purchases, revenue, first_age, last_age FROM analytics_memberstats "
        "WHERE purchases > 0 AND member_id %% %s = 0",
        [stride],
    )
    sample = clv.Customers.from_rows(cursor.fetchall())
    model = clv.fit(sample)
    # Sums per (store, segment) of the predictions, chunk by chunk in member id order.
    totals = {}
    low = -1
    while True:
        cursor.execute(
            "SELECT member_id, store_id, segment, purchases, revenue, first_age, last_age "
            "FROM analytics_memberstats WHERE purchases > 0 AND member_id > %s "
            "ORDER BY member_id LIMIT %s",
            [low, PREDICT_CHUNK],
        )
        rows = cursor.fetchall()
        if not rows:
            break
        low = rows[-1][0]
        customers = clv.Customers.from_rows([row[3:] for row in rows])
        predicted = np.vstack(clv.predict(model, customers, HORIZON_DAYS))
        keys = [(row[1], row[2]) for row in rows]
        groups = {key: number for number, key in enumerate(dict.fromkeys(keys))}
        index = np.fromiter((groups[key] for key in keys), dtype=np.int64, count=len(keys))
        for key, number in groups.items():
            sums = predicted[:, index == number].sum(axis=1)
            entry = totals.setdefault(key, np.zeros(3))
            entry += sums
    cursor.execute("DELETE FROM analytics_segmentfigures")
    cursor.execute(
        "SELECT store_id, segment, COUNT(*), SUM(purchases), SUM(revenue), "
        "SUM(COALESCE(last_age, 0)) FROM analytics_memberstats GROUP BY store_id, segment"
    )
    rows = []
    for store, segment, count, purchases, revenue, recency in cursor.fetchall():
        expected, value, alive = totals.get((store, segment), np.zeros(3))
        rows.append(
            SegmentFigures(
                store_id=store,
                segment=segment,
                members=count,
                purchases=purchases or 0,
                revenue=money(revenue or 0),
                recency_days=float(recency or 0),
                expected_purchases=float(expected),
                expected_value=money(value),
                alive=float(alive),
            )
        )
    SegmentFigures.objects.bulk_create(rows, batch_size=1000)
    model["sample"] = len(sample)
    model["buyers"] = buyers
    return model


def _ms(started):
    """Milliseconds since ``started``: each step's time goes into the run's counts."""
    return round((time.monotonic() - started) * 1000)


def _timing(run, **milliseconds):
    """Record how long a step took in the run's counts (saved when the run ends)."""
    if run is not None:
        run.counts.update(milliseconds)


def through_day(as_of):
    """The last complete day as of a moment: the day before its date in the project's zone."""
    return timezone.localtime(as_of).date() - timedelta(days=1)


def refresh_analytics(*, as_of, run=None, batch_size=None, full=False):
    """Rebuild the daily figures (the last few days, or all of them on the first run or with
    ``full``) and the member snapshot, as of the end of the day before ``as_of``."""
    through = through_day(as_of)
    first_day, full, marks = refresh_daily(
        as_of=as_of, through=through, full=full, batch_size=batch_size, run=run
    )
    refresh_snapshot(
        as_of=as_of, through=through, first_day=first_day, full=full, marks=marks, run=run
    )
    started = time.monotonic()
    Snapshot.objects.filter(pk=1).update(effects=measure_effects(as_of))
    _timing(run, effects_ms=_ms(started))
    started = time.monotonic()
    replayed = whatif.refresh_inputs(as_of)
    _timing(run, replay_inputs_ms=_ms(started), replay_inputs=replayed)


def measure_effects(as_of):
    """The effect of joining both ways, as JSON for the snapshot."""
    return {
        "did": effect.to_json(effect.difference_in_differences(as_of)),
        "cem": matching.to_json(matching.coarsened_exact_matching(as_of)),
    }


def stored_effects():
    """(difference in differences, matched comparison, as of): the nightly job's, or worked out
    now when it has not run yet (a new program, the tests)."""
    snapshot = Snapshot.objects.filter(pk=1).only("as_of", "effects").first()
    if snapshot is not None and snapshot.effects:
        data = snapshot.effects
        return effect.from_json(data["did"]), matching.from_json(data["cem"]), snapshot.as_of
    now = timezone.now()
    return effect.difference_in_differences(now), matching.coarsened_exact_matching(now), now

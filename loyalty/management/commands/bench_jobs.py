"""Benchmark the nightly jobs against one hand-written SQL statement each: expire_points (a
night with a day of expiries, then a 30-day backlog, then a year's), birthday_offers,
expiry_reminders and reevaluate_tiers.

PostgreSQL only, on a throwaway database (its name must contain "bench"): the ledger is
append-only, so generated rows stay. Each job runs for real; its single-statement counterpart
does the same work on the same rows first, inside a transaction that is rolled back (run twice,
the second, warm-cache time is reported, so the comparison does not favour the job).
"""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from loyalty.engine.birthdays import birthday_days
from loyalty.engine.tiers import moments, qualifying_select, reevaluate_sql
from loyalty.jobs.runner import run_job
from loyalty.models import ProgramSettings, Tier

MEMBERS_SQL = """
INSERT INTO members_member
    (card_number, phone, email, first_name, last_name, birth_date, language, marketing_consent,
     consent_at, consent_source, consent_text, status, tier_id, points_balance, points_debt,
     enrolled_at, enrolment_channel, referral_code, search_text)
SELECT '8' || lpad((%(offset)s + i)::text, 12, '0'),
       '+7999' || lpad((%(offset)s + i)::text, 7, '0'),
       '', 'Bench', '', DATE '1970-01-01' + (i * 7 %% 18262),
       'ru', i %% 3 <> 0, CASE WHEN i %% 3 <> 0 THEN %(now)s END, 'bench', '', 'active',
       %(tier)s, 0, 0, %(now)s, 'import', 'B' || (%(offset)s + i), ''
FROM generate_series(1, %(members)s) AS i
"""

# Lots spread over the members (each member's lots far apart in id); expiry grows with the id, as
# it does when lots are earned day after day, evenly over ``span`` days from the benchmark moment
# (the backlogs' days together), and the oldest ``share`` of them have expired already.
LOTS_SQL = """
INSERT INTO loyalty_pointslot
    (member_id, points, remaining, available_from, expires_at, purchase_id, batch, created_at)
SELECT m.first_id + (i %% %(members)s), 10 + i %% 90, 10 + i %% 90,
       %(as_of)s - interval '400 days',
       %(as_of)s + interval '1 day' * %(span)s * ((i - 0.5) / %(lots)s - %(share)s),
       NULL, '', %(as_of)s - interval '400 days'
FROM generate_series(1, %(lots)s) AS i,
     (SELECT min(id) AS first_id FROM members_member WHERE consent_source = 'bench') AS m
"""

ENTRIES_SQL = """
INSERT INTO loyalty_ledgerentry
    (member_id, kind, account, points, lot_id, reason, job, batch, expires_at, created_at)
SELECT member_id, 'earn', 'issued', points, id, '', '', '', expires_at, created_at
FROM loyalty_pointslot WHERE id > %(last_lot)s
"""

BALANCES_SQL = """
UPDATE members_member SET points_balance = s.points
FROM (SELECT member_id, sum(remaining) AS points FROM loyalty_pointslot
      WHERE id > %(last_lot)s GROUP BY member_id) s
WHERE members_member.id = s.member_id
"""

# The least a skilled SQL writer would write: zero the lots past expiry, one expire entry each
# with the points the lot had, each member's balance down by their sum. Only the expiry job
# changes a lot past its expiry, so the lots' old remaining needs no lock.
EXPIRE_ONE_STATEMENT = """
WITH expired AS (
    UPDATE loyalty_pointslot l SET remaining = 0
    FROM (SELECT id, remaining FROM loyalty_pointslot
          WHERE remaining > 0 AND expires_at <= %(as_of)s) old
    WHERE l.id = old.id
    RETURNING l.id, l.member_id, old.remaining, l.expires_at
), entries AS (
    INSERT INTO loyalty_ledgerentry
        (member_id, kind, account, points, lot_id, reason, job, batch, expires_at, created_at)
    SELECT member_id, 'expire', 'expired', -remaining, id, '', 'bench', 'one', expires_at,
           %(as_of)s
    FROM expired
)
UPDATE members_member m SET points_balance = points_balance - s.points
FROM (SELECT member_id, sum(remaining) AS points FROM expired GROUP BY member_id) s
WHERE m.id = s.member_id
"""

BIRTHDAY_ONE_STATEMENT = """
WITH grants AS (
    INSERT INTO loyalty_birthdaygrant (member_id, year, batch, created_at)
    SELECT id, %(year)s, 'one', %(as_of)s FROM members_member
    WHERE marketing_consent AND status = 'active'
      AND EXTRACT(MONTH FROM birth_date) = %(month)s
      AND EXTRACT(DAY FROM birth_date) = ANY(%(days)s)
    ON CONFLICT DO NOTHING
    RETURNING member_id
), lots AS (
    INSERT INTO loyalty_pointslot
        (member_id, points, remaining, available_from, expires_at, purchase_id, batch,
         created_at)
    SELECT m.id, %(points)s,
           CASE WHEN m.points_debt >= %(points)s THEN 0 ELSE %(points)s - m.points_debt END,
           %(as_of)s, %(expires_at)s, NULL, 'one', %(as_of)s
    FROM grants g JOIN members_member m ON m.id = g.member_id
    RETURNING id, member_id, points, remaining, expires_at
), entries AS (
    INSERT INTO loyalty_ledgerentry
        (member_id, kind, account, points, lot_id, reason, job, batch, expires_at, created_at)
    SELECT member_id, 'bonus', 'bonus', points, id, 'birthday', 'bench', 'one', expires_at,
           %(as_of)s
    FROM lots
), messages AS (
    INSERT INTO messaging_outbox
        (member_id, purpose, context, key, status, not_before, attempts, created_at)
    SELECT member_id, 'birthday_offer',
           jsonb_build_object('points', points, 'expires_at', expires_at),
           'bench-birthday:' || member_id, 'pending', %(as_of)s, 0, %(as_of)s
    FROM lots
)
UPDATE members_member SET points_balance = points_balance + lots.points,
    points_debt = points_debt - (lots.points - lots.remaining)
FROM lots WHERE members_member.id = lots.member_id
"""


# Purchases of the generated members over the last 400 days, so that tiers have something to
# re-qualify on: every member's spend differs (some above Silver's threshold, a few above Gold's),
# and a third of the members sit in a higher tier than their spend, so some fall (their grace
# period started 40 days ago) and some start a grace period.
PURCHASES_SQL = """
INSERT INTO loyalty_purchase
    (external_id, occurred_at, channel, amount, discount_amount, redeemed_points, redeemed_value,
     paid_amount, earned_points, coupon_code, refunded_amount, reversed_points, returned_points,
     qualifying_amount, is_historical, fingerprint, response, created_at, member_id, store_id,
     tier_id)
SELECT 'BJ' || %(run)s || '-' || i, t, 'store', a, 0, 0, 0, a, 0, '', 0, 0, 0, a, true, '', '',
       t, %(offset_id)s + (i %% %(members)s), %(store)s, NULL
FROM (
    SELECT i, %(as_of)s - interval '1 minute' * ((i * 7919) %% (400 * 1440)) AS t,
           (100 + (i * 104729) %% 9000)::numeric(12, 2) AS a
    FROM generate_series(1::bigint, %(purchases)s) AS i
) g
"""

TIERS_SQL = """
UPDATE members_member SET
    tier_id = (SELECT id FROM loyalty_tier ORDER BY threshold DESC LIMIT 1),
    below_tier_since = CASE WHEN id %% 2 = 0 THEN %(as_of)s - interval '40 days' END
WHERE id >= %(offset_id)s AND id %% 3 = 0
"""

# The one statement's members and their qualifying values: every member joined to the qualifying
# values of the whole run at once (the job computes them once per run into a temporary table).
TIERS_MEMBERS_SQL = """
SELECT m.id AS member_id, m.tier_id AS tier_id, m.below_tier_since AS below_since,
       COALESCE(v.value, 0) AS value, COALESCE(v.held, 0) AS held
FROM members_member m
LEFT JOIN ({qualifying}) v ON v.member_id = m.id
WHERE m.status <> 'merged'
"""

REMINDERS_ONE_STATEMENT = """
WITH notices AS (
    INSERT INTO loyalty_lotnotice (lot_id, member_id, kind, batch, created_at)
    SELECT l.id, l.member_id, 'expiry', 'one', %(as_of)s
    FROM loyalty_pointslot l JOIN members_member m ON m.id = l.member_id
    WHERE l.remaining > 0 AND l.expires_at > %(as_of)s AND l.expires_at <= %(until)s
      AND l.available_from <= %(as_of)s AND m.marketing_consent AND m.status = 'active'
    ON CONFLICT DO NOTHING
    RETURNING lot_id, member_id
)
INSERT INTO messaging_outbox
    (member_id, purpose, context, key, status, not_before, attempts, created_at)
SELECT n.member_id, 'expiry_reminder',
       jsonb_build_object('points', SUM(l.remaining), 'expires_at', MIN(l.expires_at)),
       'bench-reminder:' || n.member_id, 'pending', %(as_of)s, 0, %(as_of)s
FROM notices n JOIN loyalty_pointslot l ON l.id = n.lot_id
GROUP BY n.member_id
ON CONFLICT DO NOTHING
"""

VACUUMED = [
    "members_member",
    "loyalty_pointslot",
    "loyalty_ledgerentry",
    "loyalty_birthdaygrant",
    "messaging_outbox",
    "loyalty_lotnotice",
    "loyalty_purchase",
]


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "PostgreSQL only, on a database whose name contains 'bench': generate members and lots, "
        "then time expire_points and birthday_offers against one hand-written statement each."
    )

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=100_000)
        parser.add_argument("--lots", type=int, default=500_000)
        parser.add_argument(
            "--purchases", type=int, default=None, help="default: two per generated member"
        )
        parser.add_argument(
            "--backlogs",
            default="1,30,365",
            help="days of lot expiries each expire_points night finds, in order "
            "(comma-separated; the lots' expiries span their sum)",
        )
        parser.add_argument(
            "--expired-share",
            type=float,
            default=0.0,
            help="share of the generated lots already expired before the first night "
            "(added to the first backlog)",
        )
        parser.add_argument("--check", action="store_true", help="run check_ledger at the end")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="time the jobs on the data of an earlier run whose jobs did not run",
        )
        parser.add_argument("--batch-size", type=int, help="the jobs' batch size (default theirs)")
        parser.add_argument(
            "--expiry-only",
            action="store_true",
            help="time only the expire_points nights (not birthdays, reminders or tiers)",
        )

    def handle(self, *args, members, lots, purchases, expired_share, check, batch_size, **options):
        reuse = options["reuse"]
        backlogs = [int(days) for days in options["backlogs"].split(",")]
        self.options = {"batch_size": batch_size} if batch_size else {}
        if connection.vendor != "postgresql":
            raise CommandError("bench_jobs needs PostgreSQL (DATABASE_URL=postgres://...)")
        name = connection.settings_dict["NAME"]
        if "bench" not in name:
            raise CommandError(
                f"refusing to fill database {name!r}: its name must contain 'bench' "
                "(generated ledger rows cannot be deleted)"
            )
        if reuse:
            # The data of an earlier run that was stopped before its jobs ran: its moment is
            # 400 days after its lots were made (LOTS_SQL).
            with connection.cursor() as cursor:
                cursor.execute("SELECT max(created_at) FROM loyalty_pointslot WHERE batch = ''")
                made = cursor.fetchone()[0]
            if made is None:
                raise CommandError("--reuse: no generated lots in this database")
            as_of = made + timedelta(days=400)
        else:
            # The benchmark moment: a year ahead of any other data, a day of birthdays.
            as_of = timezone.now().replace(microsecond=0) + timedelta(days=800)
            purchases = 2 * members if purchases is None else purchases
            self.generate(members, lots, purchases, expired_share, as_of, sum(backlogs))
        day_after = as_of + timedelta(days=1)
        program = ProgramSettings.load()
        nights = []
        night = as_of
        for days in backlogs:
            night += timedelta(days=days)
            nights.append((f"expire {days}d", night))
        # The first night: the lots whose expiry fell in its backlog's days.
        rows = [
            self.compare(nights[0][0], nights[0][1], EXPIRE_ONE_STATEMENT, {"as_of": nights[0][1]})
        ]
        if not options["expiry_only"]:
            rows += self.other_jobs(as_of, day_after, program)
        # The later nights, after the other jobs (which want lots still open): each finds the
        # lots whose expiry fell since the night before.
        for label, moment in nights[1:]:
            rows.append(self.compare(label, moment, EXPIRE_ONE_STATEMENT, {"as_of": moment}))
        self.report(rows, check)

    def other_jobs(self, as_of, day_after, program):
        return [
            self.compare("birthday_offers", as_of, *self.birthday_statement(as_of)),
            self.compare(
                "expiry_reminders",
                day_after,
                REMINDERS_ONE_STATEMENT,
                {
                    "as_of": day_after,
                    "until": day_after + timedelta(days=program.expiry_reminder_days),
                },
            ),
            self.compare("reevaluate_tiers", day_after, *self.tiers_statement(day_after)),
        ]

    def report(self, rows, check):
        self.stdout.write("")
        self.stdout.write(
            f"{'job':<18}{'rows':>10}{'job s':>10}{'1 stmt s':>10}{'ratio':>8}  verdict"
        )
        for job, changed, job_seconds, one_seconds in rows:
            ratio = job_seconds / one_seconds if one_seconds else float("inf")
            verdict = "ok (within 1.5x)" if ratio <= 1.5 else "SLOWER THAN 1.5x"
            self.stdout.write(
                f"{job:<18}{changed:>10}{job_seconds:>10.2f}{one_seconds:>10.2f}{ratio:>8.2f}"
                f"  {verdict}"
            )
        if check:
            from django.core.management import call_command

            started = time.perf_counter()
            call_command("check_ledger")
            self.stdout.write(f"check_ledger: {time.perf_counter() - started:.1f} s")

    def tiers_statement(self, as_of):
        """The job's own statement over every member at once (the job runs it per id range)."""
        program = ProgramSettings.load()
        members = TIERS_MEMBERS_SQL.format(qualifying=qualifying_select(program))
        return reevaluate_sql(members, program), moments(program, as_of)

    def generate(self, members, lots, purchases, share, as_of, span):
        tier = Tier.objects.order_by("threshold").values_list("id", flat=True).first()
        if tier is None:
            raise CommandError("no tiers: run migrate first")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM members_member")
            offset = cursor.fetchone()[0]
            cursor.execute("SELECT coalesce(max(id), 0) FROM loyalty_pointslot")
            last_lot = cursor.fetchone()[0]
            params = {
                "offset": offset,
                "members": members,
                "lots": lots,
                "share": share,
                "span": span,
                "now": timezone.now(),
                "as_of": as_of,
                "tier": tier,
                "last_lot": last_lot,
            }
            with transaction.atomic():
                cursor.execute(MEMBERS_SQL, params)
                cursor.execute("SELECT min(id) FROM members_member WHERE id > %(offset)s", params)
                params["offset_id"] = cursor.fetchone()[0]
                cursor.execute(
                    LOTS_SQL.replace(
                        "(SELECT min(id) AS first_id FROM members_member "
                        "WHERE consent_source = 'bench')",
                        "(SELECT %(offset_id)s::bigint AS first_id)",
                    ),
                    params,
                )
                cursor.execute(ENTRIES_SQL, params)
                cursor.execute(BALANCES_SQL, params)
                cursor.execute("SELECT min(id) FROM loyalty_store")
                params.update(store=cursor.fetchone()[0], purchases=purchases, run=offset)
                cursor.execute(PURCHASES_SQL, params)
                cursor.execute(TIERS_SQL, params)
            cursor.execute("VACUUM ANALYZE members_member")
            cursor.execute("VACUUM ANALYZE loyalty_pointslot")
            cursor.execute("VACUUM ANALYZE loyalty_ledgerentry")
            cursor.execute("VACUUM ANALYZE loyalty_purchase")
        self.stdout.write(
            f"generated {members} members, {lots} lots (+{lots} entries), {purchases} purchases "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def birthday_statement(self, as_of):
        program = ProgramSettings.load()
        today = timezone.localtime(as_of).date()
        return BIRTHDAY_ONE_STATEMENT, {
            "as_of": as_of,
            "year": today.year,
            "month": today.month,  # 29 February is kept on the 28th: always the same month
            "days": [day for _month, day in birthday_days(today)],
            "points": program.birthday_points,
            "expires_at": as_of + timedelta(days=program.birthday_points_expiry_days),
        }

    def one_statement(self, sql, params):
        """Seconds and rows of the statement, its work rolled back."""
        started = time.perf_counter()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                changed = cursor.rowcount
                seconds = time.perf_counter() - started
                raise Rollback
        except Rollback:
            pass
        return seconds, changed

    def compare(self, label, as_of, sql, params):
        job = "expire_points" if label.startswith("expire") else label
        self.one_statement(sql, params)  # warm the cache the job will also find warm
        one_seconds, one_rows = self.one_statement(sql, params)
        # The rolled-back work left dead rows the job would have to step over: clear them.
        with connection.cursor() as cursor:
            for table in VACUUMED:
                cursor.execute(f"VACUUM ANALYZE {table}")
        started = time.perf_counter()
        run = run_job(job, as_of=as_of, **self.options)
        job_seconds = time.perf_counter() - started
        self.stdout.write(
            f"{label}: job {job_seconds:.2f} s ({run.rows} rows, {run.batches} batches), "
            f"one statement {one_seconds:.2f} s ({one_rows} members)"
        )
        return label, run.rows, job_seconds, one_seconds

"""Birthday points (SPEC section 6): once a year, on the member's birthday, with a message."""

import calendar

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from loyalty.engine import outbox, progress
from loyalty.engine.db import dt, id_ranges, json_object, new_batch
from loyalty.engine.ledger import credit_batch, lot_expiry
from loyalty.engine.locking import retry_on_conflict
from loyalty.models import ProgramSettings
from members.models import Member
from messaging.models import Purpose


def birthday_days(today):
    """(month, day) of the birthdays kept on ``today``: 29 February on the 28th in other years."""
    days = [(today.month, today.day)]
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        days.append((2, 29))
    return days


def birthday_members(today):
    """Members with marketing consent whose birthday is ``today``.

    Answered from the member_birthday_idx expression index, whose expressions are exactly the
    SQL of these lookups (docs/benchmarks.md shows the plan): a few thousand rows of a million.
    """
    birthday = Q()
    for month, day in birthday_days(today):
        birthday |= Q(birth_date__month=month, birth_date__day=day)
    members = Member.objects.filter(birthday, marketing_consent=True, status=Member.Status.ACTIVE)
    return members.order_by().values("id")


@retry_on_conflict
@transaction.atomic(durable=True)
def _birthday_grants(low, high, today, as_of, points, expires_at):
    batch = new_batch()
    members = birthday_members(today).filter(id__gte=low, id__lt=high)
    members_sql, members_params = members.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO loyalty_birthdaygrant (member_id, year, batch, created_at)
            SELECT id, %s, %s, %s FROM ({members_sql}) AS birthday
            WHERE true  -- SQLite needs a WHERE before ON CONFLICT after a SELECT
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [today.year, batch, dt(as_of), *members_params],
        )
        if not cursor.rowcount:
            return 0
        credited = credit_batch(
            cursor,
            batch=batch,
            grants_sql="SELECT member_id, %s AS points FROM loyalty_birthdaygrant WHERE batch = %s",
            params=[points, batch],
            now=as_of,
            expires_at=expires_at,
            reason="birthday",
            job="birthday_offers",
        )
        context = json_object(points="l.points", expires_at="l.expires_at")
        cursor.execute(
            *outbox.insert_sql(
                Purpose.BIRTHDAY_OFFER,
                f"""
                SELECT l.member_id, {context} AS context,
                       %s || ':' || l.member_id AS event
                FROM loyalty_pointslot l WHERE l.batch = %s
                """,  # noqa: S608
                [today.year, batch],
                now=as_of,
            )
        )
        return credited


# Birthdays granted per transaction. The index finds the day's members (about 1 in 365) first,
# so a million members make one batch rather than ten sweeps of an id range.
BIRTHDAY_BATCH_MEMBERS = 10_000


def birthday_offers(*, as_of, run=None, batch_size=BIRTHDAY_BATCH_MEMBERS):
    """Members with marketing consent whose birthday is today get the birthday points, once a year.

    "Today" is the program's local date (TIME_ZONE); 29 February birthdays are kept on
    28 February in other years. The points expire N days (default 30) after they are granted.
    """
    program = ProgramSettings.load()
    if not program.birthday_points:
        return
    today = timezone.localtime(as_of).date()
    expires_at = lot_expiry(program, as_of, source="birthday")
    ids = list(birthday_members(today).order_by("id").values_list("id", flat=True))
    for low, high in id_ranges(ids, batch_size):
        credited = _birthday_grants(low, high, today, as_of, program.birthday_points, expires_at)
        progress.checkpoint(run, credited, members=credited)

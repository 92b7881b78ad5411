"""Locks and retries shared by every service that changes points.

Every writer of a member's points (purchases, refunds, adjustments, jobs) locks the member's row
first, so concurrent calls on one member serialise and calls on different members never wait
for each other. Lots are only changed under their member's lock, so they need no lock of their own.
"""

import functools
import time

from django.db import OperationalError, connection
from django.utils.translation import gettext_lazy as _

from loyalty.errors import LoyaltyError
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
                    raise LoyaltyError(
                        "busy",
                        _("The member is busy with another operation. Try again."),
                        status_code=503,
                    ) from exc
                if state not in RETRYABLE_SQLSTATES and "database is locked" not in str(exc):
                    raise
                if attempt == attempts - 1:
                    raise LoyaltyError(
                        "busy", _("The system is busy. Try again."), status_code=503
                    ) from exc
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


def lock_member_by_card(card_number):
    """Lock the member behind a card in one statement; a merged card leads (and locks) on to
    the member it was merged into. Raises ``member_not_found``."""
    member = (
        Member.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tier")
        .filter(card_number=card_number)
        .first()
    )
    if member is None:
        raise LoyaltyError(
            "member_not_found",
            _("No member has card %(card)s.") % {"card": card_number},
            fields={"card_number": [str(_("Unknown card number."))]},
            status_code=404,
        )
    if member.merged_into_id:
        return lock_member(member.merged_into_id)
    return member


def lock_member_with_balance(card_number, now):
    """The purchase hot path's first step: lock the member behind a card, then add up its open
    lots as of ``now``. Returns (member, lots available, lots pending); the member's tier comes
    from the per-process ladder, not a join. Raises ``member_not_found``.

    Hand-written because it runs on every purchase: the ORM spends more time building these
    two statements than PostgreSQL spends answering them. They must stay two: in one statement
    the sums would be read with the snapshot taken before waiting for the lock, and would miss
    what the holder of the lock had just spent.
    """
    from loyalty.models import PointsLot, Tier

    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    found = list(
        Member.objects.raw(
            f"SELECT * FROM {Member._meta.db_table} WHERE card_number = %s{lock}",  # noqa: S608
            [card_number],
        )
    )
    if not found:
        raise LoyaltyError(
            "member_not_found",
            _("No member has card %(card)s.") % {"card": card_number},
            fields={"card_number": [str(_("Unknown card number."))]},
            status_code=404,
        )
    member = found[0]
    if member.merged_into_id:
        member = lock_member(member.merged_into_id)
    else:
        tier = next((tier for tier in Tier.ladder() if tier.pk == member.tier_id), None)
        if tier is not None:
            member.tier = tier
    when = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT"  # noqa: S608  (the table name comes from the model; values are parameters)
            " COALESCE(SUM(CASE WHEN available_from <= %s AND expires_at > %s"
            "  THEN remaining ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN available_from > %s THEN remaining ELSE 0 END), 0)"
            f" FROM {PointsLot._meta.db_table} WHERE member_id = %s AND remaining > 0",
            [when, when, when, member.pk],
        )
        available, pending = cursor.fetchone()
    return member, int(available), int(pending)


def lock_members(member_ids):
    """Several members' rows, locked in primary-key order so two callers cannot deadlock."""
    return list(
        Member.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted(member_ids))
        .order_by("pk")
    )

"""Manual corrections of points by staff, within each role's limit, always audited."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_member, retry_on_conflict
from loyalty.models import EntryKind, ProgramSettings, audit
from loyalty.roles import ADJUSTMENT_LIMIT_FIELDS, role_of


def adjustment_limit(staff):
    """The largest adjustment (either sign) this staff user may make; None means no limit."""
    if staff is None or staff.has_perm("loyalty.adjust_points_unlimited"):
        return None
    if not staff.has_perm("loyalty.adjust_points"):
        return 0
    field = ADJUSTMENT_LIMIT_FIELDS.get(role_of(staff))
    return getattr(ProgramSettings.cached(), field) if field else 0


@retry_on_conflict
@transaction.atomic(durable=True)
def adjust_points(*, member_id, points, reason, staff, now=None):
    """Add (positive) or remove (negative) points with a mandatory reason.

    Added points form a new lot with the program's expiry; removed points come from available
    lots, soonest expiry first, and never overdraw. Raises ``reason_required``,
    ``adjustment_limit_exceeded``, ``insufficient_points``.
    """
    return apply_adjustment(member_id=member_id, points=points, reason=reason, staff=staff, now=now)


def apply_adjustment(*, member_id, points, reason, staff, now=None, action="points.adjust"):
    """The adjustment as a step inside another service's transaction (e.g. a complaint's
    compensation); same rules and audit as ``adjust_points``."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError(
            "reason_required",
            _("Say why the points are adjusted."),
            fields={"reason": [str(_("A reason is required."))]},
            status_code=400,
        )
    if not points:
        raise LoyaltyError(
            "invalid",
            _("An adjustment must change the balance."),
            fields={"points": [str(_("Enter a non-zero number of points."))]},
            status_code=400,
        )
    limit = adjustment_limit(staff)
    if limit is not None and abs(points) > limit:
        raise LoyaltyError(
            "adjustment_limit_exceeded",
            _("Your role may adjust at most %(limit)s points; ask an administrator.")
            % {"limit": limit},
            fields={"points": [str(_("Above your adjustment limit."))]},
            status_code=403,
        )
    member = lock_member(member_id)
    before = {"points_balance": member.points_balance, "points_debt": member.points_debt}
    start_balance, start_debt = member.points_balance, member.points_debt
    if points > 0:
        program = ProgramSettings.load()
        ledger.grant_bonus(
            member,
            points=points,
            now=now,
            program=program,
            kind=EntryKind.ADJUST,
            staff=staff,
            reason=reason,
        )
    else:
        ledger.debit(
            member, points=-points, kind=EntryKind.ADJUST, now=now, staff=staff, reason=reason
        )
    ledger.save_member_points(
        member,
        balance_delta=member.points_balance - start_balance,
        debt_delta=member.points_debt - start_debt,
    )
    audit(
        actor=staff,
        action=action,
        member=member,
        obj=member,
        reason=reason,
        before=before,
        after={
            "points_balance": member.points_balance,
            "points_debt": member.points_debt,
            "points": points,
        },
    )
    return member

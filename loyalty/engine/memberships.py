"""Paid memberships: join (with an optional free trial), renew, cancel, lapse.

A plan's fee is recorded per period (``MembershipPeriod.fee``): collecting the money is the
merchant's till or payment provider's business, outside this back-office. While a membership is
live the member holds at least the plan's tier; when it ends, the nightly tier re-evaluation
lets them fall after the usual grace period. A plan's bonus points are granted each paid period.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger, outbox, progress, webhook_events
from loyalty.engine.db import dt, json_object, new_batch, plus_days
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_member, retry_on_conflict
from loyalty.engine.pricing import check_member_can_buy
from loyalty.engine.tiers import plan_tier_change
from loyalty.models import (
    Membership,
    MembershipPeriod,
    MembershipPlan,
    ProgramSettings,
    audit,
)
from loyalty.models.naming import name_sql
from messaging.models import Purpose

BATCH_MEMBERSHIPS = 10_000


def _grant_bonus(member, plan, now, program):
    if not plan.bonus_points:
        return
    ledger.grant_bonus(
        member, points=plan.bonus_points, now=now, program=program, reason="membership"
    )


@retry_on_conflict
@transaction.atomic(durable=True)
def join_membership(*, member_id, plan_id, trial=False, staff=None, reason="", now=None):
    """Start a membership: a free trial (once per member and plan) or a first paid period.

    Raises ``membership_exists`` when the member already has a live one, ``plan_not_available``
    for a plan not on sale, ``member_blocked`` for a card that is not active.
    """
    now = now or timezone.now()
    member = lock_member(member_id)
    check_member_can_buy(member)
    plan = MembershipPlan.objects.select_related("tier").filter(pk=plan_id, is_active=True).first()
    if plan is None:
        raise LoyaltyError(
            "plan_not_available",
            _("This plan is not on sale."),
            fields={"plan": [str(_("This plan is not on sale."))]},
            status_code=422,
        )
    if Membership.objects.filter(member=member, status__in=["trial", "active"]).exists():
        raise LoyaltyError(
            "membership_exists", _("The member already has a membership."), status_code=409
        )
    if trial and (
        not plan.trial_days or Membership.objects.filter(member=member, plan=plan).exists()
    ):
        raise LoyaltyError(
            "trial_not_available",
            _("This plan has no free trial for this member."),
            status_code=422,
        )
    days = plan.trial_days if trial else plan.period_days
    membership = Membership.objects.create(
        member=member,
        plan=plan,
        status=Membership.Status.TRIAL if trial else Membership.Status.ACTIVE,
        started_at=now,
        period_start=now,
        period_end=now + timedelta(days=days),
    )
    MembershipPeriod.objects.create(
        membership=membership,
        kind=MembershipPeriod.Kind.TRIAL if trial else MembershipPeriod.Kind.JOIN,
        starts_at=now,
        ends_at=membership.period_end,
        fee=0 if trial else plan.fee,
        created_at=now,
    )
    start_balance, start_debt = member.points_balance, member.points_debt
    tier_fields, previous = plan_tier_change(member, plan, now), member.tier
    if not trial:
        _grant_bonus(member, plan, now, ProgramSettings.load())
    ledger.save_member_points(
        member,
        balance_delta=member.points_balance - start_balance,
        debt_delta=member.points_debt - start_debt,
        **tier_fields,
    )
    if tier_fields:
        webhook_events.tier_changed(member, tier=tier_fields["tier"], previous=previous, now=now)
    outbox.enqueue(
        member_id=member.pk,
        purpose=Purpose.MEMBERSHIP_JOINED,
        key=f"membership_joined:{membership.pk}",
        context={"plan": plan.display_name(member.language), "period_end": membership.period_end},
        now=now,
    )
    audit(actor=staff, action="membership.join", member=member, obj=membership, reason=reason)
    return membership


@retry_on_conflict
@transaction.atomic(durable=True)
def renew_membership(*, membership_id, staff=None, now=None):
    """Pay the next period of a live membership now (it starts when the current one ends)."""
    now = now or timezone.now()
    membership = Membership.objects.select_related("plan", "plan__tier").get(pk=membership_id)
    member = lock_member(membership.member_id)
    membership = Membership.objects.select_related("plan", "plan__tier").get(pk=membership_id)
    if not membership.is_live:
        raise LoyaltyError("membership_ended", _("This membership has ended."), status_code=422)
    plan = membership.plan
    start = membership.period_end
    end = start + timedelta(days=plan.period_days)
    MembershipPeriod.objects.create(
        membership=membership,
        kind=MembershipPeriod.Kind.RENEWAL,
        starts_at=start,
        ends_at=end,
        fee=plan.fee,
        created_at=now,
    )
    Membership.objects.filter(pk=membership.pk).update(
        status=Membership.Status.ACTIVE, period_end=end, auto_renew=True, cancelled_at=None
    )
    start_balance, start_debt = member.points_balance, member.points_debt
    tier_fields, previous = plan_tier_change(member, plan, now), member.tier
    _grant_bonus(member, plan, now, ProgramSettings.load())
    ledger.save_member_points(
        member,
        balance_delta=member.points_balance - start_balance,
        debt_delta=member.points_debt - start_debt,
        **tier_fields,
    )
    if tier_fields:
        webhook_events.tier_changed(member, tier=tier_fields["tier"], previous=previous, now=now)
    audit(actor=staff, action="membership.renew", member=member, obj=membership)
    membership.refresh_from_db()
    return membership


@transaction.atomic(durable=True)
def cancel_membership(*, membership_id, staff=None, reason="", now=None):
    """Stop renewals: the membership runs to the end of the period already paid, then lapses."""
    now = now or timezone.now()
    changed = Membership.objects.filter(
        pk=membership_id, status__in=["trial", "active"], auto_renew=True
    ).update(auto_renew=False, cancelled_at=now)
    membership = Membership.objects.get(pk=membership_id)
    if changed:
        audit(
            actor=staff,
            action="membership.cancel",
            member=membership.member,
            obj=membership,
            reason=reason,
        )
    return membership


@transaction.atomic(durable=True)
def lapse_membership(*, membership_id, staff=None, now=None):
    """End a live membership now (e.g. the payment failed)."""
    now = now or timezone.now()
    membership = Membership.objects.get(pk=membership_id)
    changed = Membership.objects.filter(pk=membership_id, status__in=["trial", "active"]).update(
        status=Membership.Status.LAPSED, ended_at=now, auto_renew=False
    )
    if changed:
        outbox.enqueue(
            member_id=membership.member_id,
            purpose=Purpose.MEMBERSHIP_LAPSED,
            key=f"membership_lapsed:{membership.pk}",
            context={"plan": membership.plan.display_name(membership.member.language)},
            now=now,
        )
        audit(actor=staff, action="membership.lapse", member=membership.member, obj=membership)
    membership.refresh_from_db()
    return membership


@retry_on_conflict
@transaction.atomic(durable=True)
def _renew_batch(low, high, as_of, program):
    """One period more for every due membership in [low, high) that renews; lapse the others."""
    batch = new_batch()
    due = "ms.id >= %s AND ms.id < %s AND ms.status IN ('trial', 'active') AND ms.period_end <= %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO loyalty_membershipperiod
                (membership_id, kind, starts_at, ends_at, fee, batch, created_at)
            SELECT ms.id, 'renewal', ms.period_end, {plus_days("ms.period_end", "pl.period_days")},
                   pl.fee, %s, %s
            FROM loyalty_membership ms JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
            WHERE {due} AND ms.auto_renew
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            [batch, dt(as_of), low, high, dt(as_of)],
        )
        renewed = cursor.rowcount
        if renewed:
            cursor.execute(
                """
                UPDATE loyalty_membership
                SET status = 'active', period_start = p.starts_at, period_end = p.ends_at
                FROM loyalty_membershipperiod p
                WHERE p.batch = %s AND loyalty_membership.id = p.membership_id
                """,
                [batch],
            )
            ledger.credit_batch(
                cursor,
                batch=batch,
                grants_sql=(
                    "SELECT ms.member_id, pl.bonus_points AS points "
                    "FROM loyalty_membershipperiod p "
                    "JOIN loyalty_membership ms ON ms.id = p.membership_id "
                    "JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id "
                    "WHERE p.batch = %s AND pl.bonus_points > 0"
                ),
                params=[batch],
                now=as_of,
                expires_at=ledger.lot_expiry(program, as_of),
                reason="membership",
                job="renew_memberships",
            )
            context = json_object(plan=name_sql("pl", "m.language"), period_end="p.ends_at")
            cursor.execute(
                *outbox.insert_sql(
                    Purpose.MEMBERSHIP_RENEWED,
                    f"""
                    SELECT ms.member_id, {context} AS context,
                           p.id AS event
                    FROM loyalty_membershipperiod p
                    JOIN loyalty_membership ms ON ms.id = p.membership_id
                    JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
                    JOIN members_member m ON m.id = ms.member_id
                    WHERE p.batch = %s
                    """,  # noqa: S608
                    [batch],
                    now=as_of,
                )
            )
        context = json_object(plan=name_sql("pl", "m.language"))
        cursor.execute(
            *outbox.insert_sql(
                Purpose.MEMBERSHIP_LAPSED,
                f"""
                SELECT ms.member_id, {context} AS context, ms.id AS event
                FROM loyalty_membership ms JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
                JOIN members_member m ON m.id = ms.member_id
                WHERE {due} AND NOT ms.auto_renew
                """,  # noqa: S608
                [low, high, dt(as_of)],
                now=as_of,
            )
        )
        cursor.execute(
            f"""
            UPDATE loyalty_membership SET status = 'lapsed', ended_at = period_end
            WHERE id IN (SELECT ms.id FROM loyalty_membership ms WHERE {due} AND NOT ms.auto_renew)
            """,  # noqa: S608
            [low, high, dt(as_of)],
        )
        lapsed = cursor.rowcount
    return renewed, lapsed


def renew_memberships(*, as_of, run=None, batch_size=BATCH_MEMBERSHIPS):
    """Renew every live membership whose period has ended and that renews; lapse the others.

    Each pass adds one period; a membership several periods behind (a missed week) gets one
    more pass each, until nothing is due. Renewal is idempotent per (membership, period start).
    """
    program = ProgramSettings.load()
    while True:
        bounds = Membership.objects.filter(
            status__in=["trial", "active"], period_end__lte=as_of
        ).values_list("id", flat=True)
        low = bounds.order_by("id").first()
        if low is None:
            return
        high_end = bounds.order_by("-id").first() + 1
        changed = 0
        while low < high_end:
            renewed, lapsed = _renew_batch(low, low + batch_size, as_of, program)
            progress.checkpoint(run, renewed + lapsed, renewed=renewed, lapsed=lapsed)
            changed += renewed + lapsed
            low += batch_size
        if not changed:
            return


def start_trials(cursor, *, members_sql, params, plan, now):
    """The set-based form of ``join_membership(trial=True)`` for a campaign: a free trial of
    ``plan`` for every active member that ``members_sql`` selects (a ``member_id`` column) who
    has no live membership and never had one of this plan; the plan's tier at once where it is
    above the member's, and the "membership joined" message. Returns how many trials started.
    A gift does not turn into a bill: these trials do not renew into a paid period (the member
    joins at the counter or through the API to keep it).

    Safe to run again: a member already given the trial is left out by the same rules.
    """
    if not plan.trial_days:
        return 0
    batch, when = new_batch(), dt(now)
    end = dt(now + timedelta(days=plan.trial_days))
    cursor.execute(
        f"""
        INSERT INTO loyalty_membership
            (member_id, plan_id, status, auto_renew, started_at, period_start, period_end)
        SELECT DISTINCT m.id, %s, 'trial', %s, %s, %s, %s
        FROM ({members_sql}) q JOIN members_member m ON m.id = q.member_id
        WHERE m.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM loyalty_membership ms WHERE ms.member_id = m.id
                          AND (ms.plan_id = %s OR ms.status IN ('trial', 'active')))
        ON CONFLICT DO NOTHING
        """,  # noqa: S608
        [plan.pk, False, when, when, end, *params, plan.pk],
    )
    started = cursor.rowcount
    if not started:
        return 0
    cursor.execute(
        """
        INSERT INTO loyalty_membershipperiod
            (membership_id, kind, starts_at, ends_at, fee, batch, created_at)
        SELECT ms.id, 'trial', ms.started_at, ms.period_end, 0, %s, %s
        FROM loyalty_membership ms
        WHERE ms.plan_id = %s AND ms.status = 'trial' AND ms.started_at = %s
          AND NOT EXISTS (SELECT 1 FROM loyalty_membershipperiod p WHERE p.membership_id = ms.id)
        """,
        [batch, when, plan.pk, when],
    )
    joined = """
        FROM loyalty_membershipperiod p JOIN loyalty_membership ms ON ms.id = p.membership_id
        WHERE p.batch = %s"""
    if plan.tier_id:
        # plan_tier_change's rule: raised at once when the plan's tier is above the member's.
        cursor.execute(
            f"""
            UPDATE members_member SET tier_id = %s, tier_since = %s, below_tier_since = NULL
            WHERE id IN (SELECT ms.member_id {joined})
              AND (SELECT t.threshold FROM loyalty_tier t WHERE t.id = members_member.tier_id)
                  < %s
            """,  # noqa: S608
            [plan.tier_id, when, batch, plan.tier.threshold],
        )
    context = json_object(plan=name_sql("pl", "m.language"), period_end="ms.period_end")
    cursor.execute(
        *outbox.insert_sql(
            Purpose.MEMBERSHIP_JOINED,
            f"""
            SELECT ms.member_id, {context} AS context, ms.id AS event
            FROM loyalty_membershipperiod p JOIN loyalty_membership ms ON ms.id = p.membership_id
            JOIN loyalty_membershipplan pl ON pl.id = ms.plan_id
            JOIN members_member m ON m.id = ms.member_id
            WHERE p.batch = %s
            """,  # noqa: S608
            [batch],
            now=now,
        )
    )
    return started

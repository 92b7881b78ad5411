"""Referrals: after a referred friend's first purchase, both members get the configured points."""

from datetime import timedelta

from django.db import IntegrityError, transaction

from loyalty.models import EntryKind, ReferralReward
from loyalty.services import points as ledger
from loyalty.services.locking import lock_member
from members.models import Member
from messaging.models import Purpose
from messaging.services import enqueue


def _credit(member, points, now, program, reason):
    ledger.credit(
        member,
        points=points,
        kind=EntryKind.BONUS,
        now=now,
        available_from=now,
        expires_at=now + timedelta(days=program.expiry_days),
        reason=reason,
    )


def reward_referral(program, friend, purchase, now):
    """Inside ``record_purchase``'s transaction, with the friend's row locked: the reward, once.

    Credits the friend in memory (the caller saves the friend's sums with its own) and the
    referrer in full. Returns the points the friend received (0 when there is nothing to do).
    The unique reward per friend decides "once", whatever runs concurrently.
    """
    points = program.referral_points
    if not points or not friend.referred_by_id or purchase.is_historical:
        return 0
    if ReferralReward.objects.filter(friend_id=friend.pk).exists():
        return 0
    referrer_id = (
        Member.objects.filter(pk=friend.referred_by_id).values_list("merged_into_id", flat=True)
    ).first() or friend.referred_by_id
    if referrer_id == friend.pk:
        return 0
    try:
        with transaction.atomic():
            ReferralReward.objects.create(
                friend_id=friend.pk,
                referrer_id=referrer_id,
                purchase=purchase,
                points=points,
                created_at=now,
            )
    except IntegrityError:
        return 0
    _credit(friend, points, now, program, "referral")
    referrer = lock_member(referrer_id)
    start_balance, start_debt = referrer.points_balance, referrer.points_debt
    _credit(referrer, points, now, program, "referral")
    ledger.save_member_points(
        referrer,
        balance_delta=referrer.points_balance - start_balance,
        debt_delta=referrer.points_debt - start_debt,
    )
    for member_id in (friend.pk, referrer_id):
        enqueue(
            member_id=member_id,
            purpose=Purpose.REFERRAL_REWARD,
            key=f"referral_reward:{friend.pk}:{member_id}",
            context={"points": points},
            now=now,
        )
    return points

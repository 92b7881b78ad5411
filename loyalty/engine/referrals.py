"""Referrals: after a referred friend's first purchase, both members get the configured points."""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from loyalty.engine import ledger, outbox
from loyalty.engine.locking import lock_member, retry_on_conflict
from loyalty.models import ProgramSettings, ReferralReward
from members.models import Member
from messaging.models import Purpose

logger = logging.getLogger(__name__)

# What sends a referrer's credit on once the friend's purchase has committed, registered at
# start-up by a layer above (loyalty/apps.py: a Celery message to loyalty.tasks.credit_referrer).
# The engine knows no task queue; with none registered, or when sending fails, the periodic sweep
# ``credit_referrers`` credits the referrer.
_dispatchers = []


def on_reward(dispatch):
    """Register ``dispatch(reward_id)``, called after commit for each new reward (once, however
    often Django's ready() runs)."""
    if dispatch not in _dispatchers:
        _dispatchers.append(dispatch)


def may_reward(program, friend, purchase):
    """Whether a purchase may earn its buyer a referral reward at all (read from memory: a
    referred friend's live purchase while the program gives one)."""
    return bool(program.referral_points and friend.referred_by_id and not purchase.is_historical)


def reward_referral(program, friend, purchase, now):
    """Inside ``record_purchase``'s transaction, with the friend's row locked: the reward, once.

    Credits the friend in memory (the caller saves the friend's sums with its own) and records
    the reward; the referrer is credited afterwards by ``credit_referrer`` in a transaction of
    its own, so that no transaction locks two members (two friends who referred each other
    could otherwise deadlock, and a sharded ledger could not hold the transaction on one node).
    Returns the points the friend received (0 when there is nothing to do). The unique reward
    per friend decides "once", whatever runs concurrently.
    """
    if not may_reward(program, friend, purchase):
        return 0
    points = program.referral_points
    if ReferralReward.objects.filter(friend_id=friend.pk).exists():
        return 0
    referrer_id = (
        Member.objects.filter(pk=friend.referred_by_id).values_list("merged_into_id", flat=True)
    ).first() or friend.referred_by_id
    if referrer_id == friend.pk:
        return 0
    try:
        with transaction.atomic():
            reward = ReferralReward.objects.create(
                friend_id=friend.pk,
                referrer_id=referrer_id,
                purchase=purchase,
                points=points,
                created_at=now,
            )
    except IntegrityError:
        return 0
    ledger.grant_bonus(friend, points=points, now=now, program=program, reason="referral")
    outbox.enqueue(
        member_id=friend.pk,
        purpose=Purpose.REFERRAL_REWARD,
        key=f"referral_reward:{friend.pk}:{friend.pk}",
        context={"points": points},
        now=now,
    )
    # After commit, at once; if the message is lost (Redis down), credit_referrers finds it.
    transaction.on_commit(lambda: _credit_later(reward.pk))
    return points


def _credit_later(reward_id):
    for dispatch in _dispatchers:
        try:
            dispatch(reward_id)
        except Exception:  # noqa: BLE001  (the broker is down: the sweep of credit_referrers does it)
            logger.warning("referral %s: referrer credit left to the periodic sweep", reward_id)


@retry_on_conflict
@transaction.atomic(durable=True)
def credit_referrer(*, reward_id, now=None):
    """Credit the referrer of one referral reward, once: the member is locked, then the reward
    is claimed by a conditional update whose count says whether this run does it. Returns the
    points credited (0 when already done). A referrer merged since is credited on the survivor.
    """
    now = now or timezone.now()
    reward = ReferralReward.objects.filter(pk=reward_id).values(
        "referrer_id", "friend_id", "points"
    )
    reward = reward.first()
    if reward is None:
        return 0
    referrer_id = reward["referrer_id"]
    survivor = Member.objects.filter(pk=referrer_id).values_list("merged_into_id", flat=True)
    referrer = lock_member(survivor.first() or referrer_id)
    claimed = ReferralReward.objects.filter(pk=reward_id, referrer_credited_at__isnull=True).update(
        referrer_credited_at=now
    )
    if not claimed:
        return 0
    program = ProgramSettings.load()
    start_balance, start_debt = referrer.points_balance, referrer.points_debt
    ledger.grant_bonus(
        referrer, points=reward["points"], now=now, program=program, reason="referral"
    )
    ledger.save_member_points(
        referrer,
        balance_delta=referrer.points_balance - start_balance,
        debt_delta=referrer.points_debt - start_debt,
    )
    outbox.enqueue(
        member_id=referrer.pk,
        purpose=Purpose.REFERRAL_REWARD,
        key=f"referral_reward:{reward['friend_id']}:{referrer.pk}",
        context={"points": reward["points"]},
        now=now,
    )
    return reward["points"]


def credit_referrers(*, now=None, older_than=timedelta(minutes=1)):
    """Credit every referrer still waiting (their task was lost), one transaction each.
    Returns the number credited."""
    now = now or timezone.now()
    waiting = ReferralReward.objects.filter(
        referrer_credited_at__isnull=True, created_at__lte=now - older_than
    ).order_by("created_at", "pk")
    return sum(
        1
        for reward_id in list(waiting.values_list("pk", flat=True)[:10_000])
        if credit_referrer(reward_id=reward_id, now=now)
    )

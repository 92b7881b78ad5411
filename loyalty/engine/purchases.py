"""Record purchases (SPEC sections 2 and 3): find and lock the member, price the receipt, write
it with its lines, spend and earn points, move up a tier; idempotent by receipt number.

The arithmetic is ``loyalty.engine.pricing``; refunds are ``loyalty.engine.refunds``; tier
qualification is ``loyalty.engine.tiers``. The purchase that crosses a tier threshold earns at
the old rate; the member moves up at once, and falls only at the nightly re-evaluation.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger, webhook_events
from loyalty.engine.coupons import coupon_effect, use_coupon
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_buyer, retry_on_conflict
from loyalty.engine.money import money, money_str
from loyalty.engine.pricing import (
    campaign_multiplier,
    check_lines_add_up,
    check_member_can_buy,
    partner_rate,
    price,
)
from loyalty.engine.referrals import may_reward, reward_referral
from loyalty.engine.tiers import can_move_up, qualifying_sql, upgraded_tier
from loyalty.models import EntryKind, ProgramSettings, Purchase, PurchaseLine, Tier


@dataclass(frozen=True)
class Outcome:
    """What a recording service answers: the response body, and whether it was a replay."""

    body: dict
    replayed: bool = False
    status: int = 201


def fingerprint(payload):
    """A stable digest of a normalised request: the same purchase always gives the same one."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_buyer(program, card_number, now, occurred_at):
    """The purchase's first statements: lock the member behind the card (a merged card leads
    on to the survivor), then read its open lots as of ``now`` and, unless it is already
    at the top tier, its qualifying spend up to ``occurred_at``, in one statement.

    Returns (member, balance, qualifying value or None). The sums are read after the lock, not
    with it: a statement that waits for a lock keeps the snapshot it took before waiting and
    would miss what the holder of the lock had just spent. A member with more open lots than
    ``points.OPEN_LOTS_READ`` (one who buys every day) has its balance taken from the cached
    sum instead, in a third statement: adding up thousands of lots under the member's lock
    held up every till serving that member.
    """
    member = lock_buyer(card_number)
    lots_sql, lots_params = ledger.capped_lot_sums_sql(member.pk, now)
    if can_move_up(member):
        spend_sql, spend_params = qualifying_sql(program, member.pk, occurred_at)
    else:  # already at the top: no need to add up the year's spend
        spend_sql, spend_params = "SELECT NULL", []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM ({lots_sql}) lots, ({spend_sql}) spend",  # noqa: S608
            lots_params + spend_params,
        )
        lots_read, available, pending, value = cursor.fetchone()
    qualifying = None if value is None else money(value)
    if lots_read < ledger.OPEN_LOTS_READ:
        balance = ledger.Balance(int(available) - member.points_debt, int(pending))
    else:
        balance = ledger.balance_from_cache(member, now)
    return member, balance, qualifying


def _purchase_body(purchase, member, balance, tier):
    return {
        "external_id": purchase.external_id,
        "card_number": member.card_number if member else None,
        "amount": money_str(purchase.amount),
        "discount_amount": money_str(purchase.discount_amount),
        "redeemed_points": purchase.redeemed_points,
        "paid_amount": money_str(purchase.paid_amount),
        "earned_points": purchase.earned_points,
        "balance": balance.as_dict() if balance else None,
        "tier": {"code": tier.code, "name": tier.name} if tier else None,
    }


def replay(record, digest, what):
    """The first answer to a repeated request, or ``idempotency_conflict`` when its details
    differ (409)."""
    if record.fingerprint != digest:
        raise LoyaltyError(
            "idempotency_conflict",
            _("%(what)s was already recorded with different details.") % {"what": what},
            status_code=409,
        )
    return Outcome(body=json.loads(record.response), replayed=True)


def purchase_payload(
    *,
    store,
    external_id,
    card_number,
    amount,
    occurred_at,
    channel,
    lines,
    redeem_points,
    coupon_code,
):
    """The normalised request that the idempotency fingerprint is taken of."""
    return {
        "store": store.pk,
        "external_id": external_id,
        "card_number": card_number,
        "amount": money_str(amount),
        "occurred_at": occurred_at.astimezone(UTC).isoformat() if occurred_at else None,
        "channel": channel,
        "lines": [
            [line.sku, line.category, str(line.quantity), money_str(line.unit_price)]
            for line in lines
        ],
        "redeem_points": redeem_points,
        "coupon_code": coupon_code,
    }


@retry_on_conflict
def record_purchase(
    *,
    store,
    external_id,
    amount,
    occurred_at,
    card_number=None,
    channel="store",
    lines=(),
    redeem_points=0,
    coupon_code="",
    historical=False,
    earn=True,
    staff=None,
    now=None,
):
    """Record a receipt: spend points, earn points, move up a tier; idempotent by receipt number.

    A replay with the same details returns the first answer and writes nothing; different
    details are ``idempotency_conflict``. Raises ``invalid`` (lines that do not add up to the
    amount), ``member_not_found``, ``member_blocked``, ``insufficient_points``,
    ``redeem_limit_exceeded``, ``coupon_not_applicable``.
    """
    lines = tuple(lines)
    amount = money(amount)
    # Before the receipt number is looked at: a request breaking the rule is refused as it is,
    # not answered from a first purchase of the same number.
    check_lines_add_up(amount=amount, lines=lines)
    digest = fingerprint(
        purchase_payload(
            store=store,
            external_id=external_id,
            card_number=card_number,
            amount=amount,
            occurred_at=occurred_at,
            channel=channel,
            lines=lines,
            redeem_points=redeem_points,
            coupon_code=coupon_code,
        )
    )
    now = now or timezone.now()
    # Optimistic: a receipt number is almost always new, so the unique constraint, not a query
    # before every purchase, finds the repeat. A repeat fails inside (duplicate key, or a rule
    # that the first call's own effect now breaks, such as points already spent) and is answered
    # from the stored first answer.
    try:
        return _record_purchase(
            _Receipt(
                store=store,
                external_id=external_id,
                amount=amount,
                occurred_at=occurred_at or now,
                card_number=card_number,
                channel=channel,
                lines=lines,
                redeem_points=redeem_points,
                coupon_code=coupon_code,
                historical=historical,
                earn=earn,
                staff=staff,
                now=now,
                digest=digest,
            )
        )
    except (IntegrityError, LoyaltyError):
        existing = (
            Purchase.objects.filter(store=store, external_id=external_id)
            .only("fingerprint", "response")
            .first()
        )
        if existing is None:
            raise
        return replay(existing, digest, _("This receipt"))


@dataclass(frozen=True)
class _Receipt:
    """One purchase request, normalised: what ``record_purchase`` was asked to record."""

    store: object
    external_id: str
    amount: Decimal
    occurred_at: datetime
    card_number: str | None
    channel: str
    lines: tuple
    redeem_points: int
    coupon_code: str
    historical: bool
    earn: bool
    staff: object
    now: datetime
    digest: str


@dataclass
class _Effect:
    """What the purchase does to its member, known before anything is written."""

    balance: ledger.Balance | None = None  # the balance after it, as the answer gives it
    tier: Tier | None = None  # the member's tier after it
    new_tier: Tier | None = None  # set when it moves the member up
    available_from: datetime | None = None  # the earned lot's window
    expires_at: datetime | None = None


@transaction.atomic(durable=True)
def _record_purchase(receipt):
    program = ProgramSettings.cached()
    member = balance_before = qualifying = None
    if receipt.card_number is not None:
        member, balance_before, qualifying = _lock_buyer(
            program, receipt.card_number, receipt.now, receipt.occurred_at
        )
        check_member_can_buy(member)
    quote, coupon = _price_receipt(program, receipt, member, balance_before)
    earned = quote.earn_points if receipt.earn else 0
    purchase = _new_purchase(receipt, member, quote, earned)
    effect = _Effect()
    if member is not None:
        effect = _effect_on_member(program, receipt, member, balance_before, qualifying, quote)
    # The answer is known before anything is written, so it goes in with the receipt (a repeat
    # of the request is answered from it) rather than in a second statement.
    body = _purchase_body(purchase, member, effect.balance, effect.tier)
    purchase.response = json.dumps(body)
    # The webhook event goes in on both paths, in this transaction: one INSERT when a
    # subscription wants it, none otherwise (webhook_events.wants reads from memory).
    if _plain(program, receipt, member, purchase, coupon, effect):
        _write_plain(receipt, member, purchase, balance_before, effect)
        webhook_events.purchase_recorded(
            purchase, member=member, store=receipt.store, now=receipt.now
        )
        return Outcome(body=body)
    _write_receipt(purchase, coupon, receipt.lines, member)
    webhook_events.purchase_recorded(purchase, member=member, store=receipt.store, now=receipt.now)
    if effect.new_tier is not None:
        webhook_events.tier_changed(
            member, tier=effect.new_tier, previous=member.tier, now=receipt.now
        )
    if member is not None:
        referral = _move_points(program, receipt, member, purchase, balance_before, effect)
        if referral:  # a referred friend's first purchase: the reward is part of the answer
            effect.balance = ledger.Balance(
                effect.balance.available + referral, effect.balance.pending
            )
            body = _purchase_body(purchase, member, effect.balance, effect.tier)
            Purchase.objects.filter(pk=purchase.pk).update(response=json.dumps(body))
    return Outcome(body=body)


def _price_receipt(program, receipt, member, balance_before):
    """The receipt's quote and its coupon (or None): the coupon's discount, the campaigns'
    multiplier (when it earns) and a partner store's rate applied."""
    coupon = None
    if receipt.coupon_code:
        coupon = coupon_effect(
            code=receipt.coupon_code,
            member_id=member.pk if member else None,
            amount=receipt.amount,
            lines=receipt.lines,
            now=receipt.now,
        )
    multiplier = Decimal(1)
    if member is not None and receipt.earn:
        multiplier = campaign_multiplier(member.pk, receipt.store, receipt.occurred_at)
    quote = price(
        program,
        tier=member.tier if member else None,
        amount=receipt.amount,
        lines=receipt.lines,
        redeem_points=receipt.redeem_points,
        available=balance_before.available if member else 0,
        coupon_discount=coupon.discount if coupon else Decimal(0),
        multiplier=multiplier,
        earn_rate=partner_rate(receipt.store),
    )
    return quote, coupon


def _new_purchase(receipt, member, quote, earned):
    """The receipt's row, not saved yet."""
    return Purchase(
        store=receipt.store,
        external_id=receipt.external_id,
        member=member,
        occurred_at=receipt.occurred_at,
        channel=receipt.channel,
        amount=quote.amount,
        discount_amount=quote.discount_amount,
        redeemed_points=quote.redeem_points,
        redeemed_value=quote.redeemed_value,
        paid_amount=quote.paid_amount,
        earned_points=earned,
        coupon_code=receipt.coupon_code,
        tier=member.tier if member else None,
        qualifying_amount=quote.paid_amount,
        is_historical=receipt.historical,
        fingerprint=receipt.digest,
    )


def _effect_on_member(program, receipt, member, balance_before, qualifying, quote):
    """The earned lot's window, the tier the purchase moves the member up to, and the balance
    after it (earned points count as available once their lot is)."""
    now = receipt.now
    available_from, expires_at = ledger.lot_window(program, min(receipt.occurred_at, now))
    now_available = available_from <= now
    earned = quote.earn_points if receipt.earn else 0
    new_tier = upgraded_tier(program, member, qualifying, quote.paid_amount)
    balance = ledger.Balance(
        available=balance_before.available - quote.redeem_points + (earned if now_available else 0),
        pending=balance_before.pending + (0 if now_available else earned),
    )
    return _Effect(
        balance=balance,
        tier=new_tier or member.tier,
        new_tier=new_tier,
        available_from=available_from,
        expires_at=expires_at,
    )


def _plain(program, receipt, member, purchase, coupon, effect):
    """Most receipts: a member's purchase that earns or spends points and does nothing else (no
    lines or coupon, no referral reward, no new tier)."""
    return (
        member is not None
        and (purchase.earned_points > 0 or purchase.redeemed_points > 0)
        and coupon is None
        and not receipt.lines
        and effect.new_tier is None
        and not may_reward(program, member, purchase)
    )


def _write_plain(receipt, member, purchase, balance_before, effect):
    """A plain purchase's writes, the receipt, its entries and lot, the points it spends and
    the member's sums, in one statement on PostgreSQL (``ledger.write_points``: up to seven
    round trips were most of the till's wait): the rows ``_write_receipt`` and ``_move_points``
    write for it."""
    start_balance, start_debt = member.points_balance, member.points_debt
    rows = [purchase]
    if purchase.redeemed_points:
        rows.append(
            ledger.new_debit(
                member,
                points=purchase.redeemed_points,
                kind=EntryKind.REDEEM,
                now=receipt.now,
                purchase=purchase,
                available=balance_before.available,
                staff=receipt.staff,
            )
        )
    if purchase.earned_points:
        entry, lot, _repaid = ledger.new_credit(
            member,
            points=purchase.earned_points,
            kind=EntryKind.EARN,
            now=receipt.now,
            available_from=effect.available_from,
            expires_at=effect.expires_at,
            purchase=purchase,
            staff=receipt.staff,
        )
        rows += [lot, entry]
    ledger.write_points(
        member,
        rows,
        now=receipt.now,
        spend=purchase.redeemed_points,
        purchase=purchase,
        balance_delta=member.points_balance - start_balance,
        debt_delta=member.points_debt - start_debt,
    )


def _write_receipt(purchase, coupon, lines, member):
    """Insert the receipt, use its coupon, and insert its lines."""
    ledger.insert_row(purchase)
    if coupon is not None:
        use_coupon(coupon, purchase=purchase, member_id=member.pk if member else None)
    if lines:
        PurchaseLine.objects.bulk_create(
            [
                PurchaseLine(
                    purchase=purchase,
                    sku=line.sku,
                    category=line.category,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                )
                for line in lines
            ]
        )


def _move_points(program, receipt, member, purchase, balance_before, effect):
    """Spend and earn the purchase's points, reward the member's referrer (a first purchase),
    and save the member's sums and new tier. Returns the referral reward (0 if none)."""
    start_balance, start_debt = member.points_balance, member.points_debt
    if purchase.redeemed_points:
        ledger.debit(
            member,
            points=purchase.redeemed_points,
            kind=EntryKind.REDEEM,
            now=receipt.now,
            purchase=purchase,
            available=balance_before.available,
            staff=receipt.staff,
        )
    if purchase.earned_points:
        ledger.credit(
            member,
            points=purchase.earned_points,
            kind=EntryKind.EARN,
            now=receipt.now,
            available_from=effect.available_from,
            expires_at=effect.expires_at,
            purchase=purchase,
            staff=receipt.staff,
        )
    referral = reward_referral(program, member, purchase, receipt.now)
    tier_fields = {}
    if effect.new_tier is not None:
        tier_fields = {"tier": effect.new_tier, "tier_since": receipt.now, "below_tier_since": None}
    ledger.save_member_points(
        member,
        balance_delta=member.points_balance - start_balance,
        debt_delta=member.points_debt - start_debt,
        **tier_fields,
    )
    return referral

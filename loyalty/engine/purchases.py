"""Quote, record and refund purchases (SPEC sections 2 and 3).

Earned points = floor(paid amount × tier earn rate × multipliers × line weights), where paid
amount = amount − discounts − value of points spent, and the multipliers are those of running
earn-multiplier campaigns whose test group holds the member (campaigns.queries). The purchase
that crosses a tier threshold earns at the old rate; the member moves up at once, and falls only
at the nightly re-evaluation.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger, multipliers
from loyalty.engine.coupons import coupon_effect, use_coupon
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import (
    lock_buyer,
    lock_member,
    retry_on_conflict,
    unknown_card,
)
from loyalty.engine.money import money, money_str
from loyalty.engine.referrals import reward_referral
from loyalty.models import (
    EntryKind,
    LotAllocation,
    PointsLot,
    ProductRule,
    ProgramSettings,
    Purchase,
    PurchaseLine,
    Refund,
    Tier,
)
from members.models import Member


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: Decimal
    unit_price: Decimal
    category: str = ""

    @property
    def amount(self):
        return money(self.quantity * self.unit_price)


def lines_total(lines):
    """What a receipt's lines come to: each line's quantity × unit price rounded half up to the
    kopeck, summed."""
    return sum((line.amount for line in lines), Decimal("0.00"))


def check_lines_add_up(*, amount, lines):
    """Lines, when given, are the receipt itself: they must add up to the amount exactly (before
    any coupon or points). Raises ``invalid`` (400) naming ``lines``."""
    if not lines:
        return
    total = lines_total(lines)
    if total != money(amount):
        message = _("The lines add up to %(total)s, not to the amount %(amount)s.") % {
            "total": money_str(total),
            "amount": money_str(amount),
        }
        raise LoyaltyError(
            "invalid",
            _("The request has invalid fields."),
            fields={"lines": [str(message)]},
            status_code=400,
        )


@dataclass
class Quote:
    amount: Decimal
    discount_amount: Decimal
    max_redeem_points: int
    redeem_points: int
    redeemed_value: Decimal
    paid_amount: Decimal
    earn_points: int
    available: int = 0
    tier: Tier | None = None
    notes: list = field(default_factory=list)

    @property
    def payable_amount(self):
        return self.paid_amount


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


def find_member(card_number):
    """The member behind a card; a merged card leads to the member it was merged into."""
    member = Member.objects.filter(card_number=card_number).only("id", "merged_into_id").first()
    if member is None:
        raise unknown_card(card_number)
    return member.merged_into_id or member.id


def _line_weight(lines):
    """Share of the basket that earns, with boosts: sum(line × multiplier) ÷ sum(lines)."""
    if not lines:
        return Decimal(1)
    total = lines_total(lines)
    if total <= 0:
        return Decimal(1)
    rules = list(ProductRule.objects.filter(is_active=True))
    if not rules:
        return Decimal(1)
    weighted = Decimal(0)
    for line in lines:
        multiplier = Decimal(1)
        for rule in rules:
            matches = (rule.sku and rule.sku == line.sku) or (
                rule.category and not rule.sku and rule.category == line.category
            )
            if not matches:
                continue
            if rule.kind == ProductRule.Kind.EXCLUDE:
                multiplier = Decimal(0)
                break
            multiplier *= rule.multiplier
        weighted += line.amount * multiplier
    return weighted / total


def price(
    program,
    *,
    tier,
    amount,
    lines,
    redeem_points,
    available,
    coupon_discount=Decimal(0),
    multiplier=Decimal(1),
    earn_rate=None,
):
    """The arithmetic of a purchase, with no side effects. Raises the redemption errors.

    Discounts (the tier's percentage and a coupon's) come off first; points may then pay up to
    the program's share of what is left. ``earn_rate`` replaces the tier's rate (a partner's).
    """
    discount = money(amount * tier.discount_percent / 100) if tier else Decimal("0.00")
    discount = min(amount, discount + coupon_discount)
    after_discount = amount - discount
    cap = ledger.floor_points(program.max_redeem_share * after_discount / program.point_value)
    max_redeem = max(0, min(cap, available))
    if redeem_points and redeem_points > available:
        raise LoyaltyError(
            "insufficient_points",
            _("Not enough points: %(available)s available, %(asked)s asked.")
            % {"available": available, "asked": redeem_points},
            fields={"redeem_points": [str(_("More than the available balance."))]},
        )
    if redeem_points and redeem_points > cap:
        raise LoyaltyError(
            "redeem_limit_exceeded",
            _("At most %(cap)s points can pay for this purchase.") % {"cap": cap},
            fields={"redeem_points": [str(_("Above the share of the purchase points may pay."))]},
        )
    redeemed_value = money(redeem_points * program.point_value)
    paid = after_discount - redeemed_value
    earn = 0
    if tier is not None and amount >= program.min_purchase_amount:
        rate = tier.earn_rate if earn_rate is None else earn_rate
        earn = ledger.floor_points(paid * rate * multiplier * _line_weight(lines))
    return Quote(
        amount=money(amount),
        discount_amount=discount,
        max_redeem_points=max_redeem,
        redeem_points=redeem_points,
        redeemed_value=redeemed_value,
        paid_amount=money(paid),
        earn_points=earn,
        available=available,
        tier=tier,
    )


def campaign_multiplier(member_id, store, when):
    """The earn multiplier of this member's purchase at this store at ``when`` (1 without offers;
    the sources are registered by the apps that run them: ``loyalty.engine.multipliers``)."""
    return multipliers.factor(member_id, store.pk if store is not None else None, when)


def _check_member_can_buy(member):
    if member.status != Member.Status.ACTIVE:
        raise LoyaltyError("member_blocked", _("This card is blocked."))


def partner_rate(store):
    """The earn rate of a partner store, or None (the member's tier rate applies)."""
    if store is not None and store.kind == store.Kind.PARTNER:
        return store.earn_rate
    return None


def quote_purchase(
    *, card_number=None, amount, lines=(), redeem_points=0, coupon_code="", now=None, store=None
):
    """What a purchase would earn and cost, without recording anything.

    Raises ``invalid`` (lines that do not add up to the amount), ``member_not_found``,
    ``member_blocked``, ``coupon_not_applicable`` and the redemption errors.
    """
    check_lines_add_up(amount=amount, lines=lines)
    now = now or timezone.now()
    program = ProgramSettings.cached()
    member = None
    if card_number is not None:
        member = Member.objects.select_related("tier").get(pk=find_member(card_number))
        _check_member_can_buy(member)
    coupon_discount = Decimal(0)
    if coupon_code:
        coupon_discount = coupon_effect(
            code=coupon_code,
            member_id=member.pk if member else None,
            amount=amount,
            lines=lines,
            now=now,
        ).discount
    return price(
        program,
        tier=member.tier if member else None,
        amount=amount,
        lines=lines,
        redeem_points=redeem_points if member else 0,
        available=ledger.balance_of(member, now).available if member else 0,
        coupon_discount=coupon_discount,
        multiplier=campaign_multiplier(member.pk if member else None, store, now),
        earn_rate=partner_rate(store),
    )


def check_coupon(*, code, card_number=None, amount, lines=(), now=None):
    """The discount a coupon gives on this basket, without using it.

    Raises ``invalid`` (lines that do not add up to the amount), ``member_not_found`` and
    ``coupon_not_applicable`` saying why it does not apply.
    """
    check_lines_add_up(amount=amount, lines=lines)
    member_id = find_member(card_number) if card_number is not None else None
    return coupon_effect(
        code=code, member_id=member_id, amount=amount, lines=lines, now=now or timezone.now()
    )


def qualifying_value(program, member_id, until):
    """Rolling spend (or count) net of refunds, over the program's window ending at ``until``.

    Hand-written: it runs on most purchases, and building it through the ORM cost more than
    PostgreSQL's index scan (member_id, occurred_at) that answers it.
    """
    sql, params = qualifying_sql(program, member_id, until)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (value,) = cursor.fetchone()
    return money(value)


def qualifying_sql(program, member_id, until):
    since = until - timedelta(days=program.tier_window_days)
    adapt = connection.ops.adapt_datetimefield_value
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        what = "COUNT(*)"
        extra = " AND qualifying_amount > 0"
    else:
        what, extra = "COALESCE(SUM(qualifying_amount), 0)", ""
    return (
        f"SELECT {what} FROM {Purchase._meta.db_table}"  # noqa: S608  (no user input)
        f" WHERE member_id = %s AND occurred_at > %s AND occurred_at <= %s{extra}",
        [member_id, adapt(since), adapt(until)],
    )


def _can_move_up(member):
    return any(tier.threshold > member.tier.threshold for tier in Tier.ladder())


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
    if _can_move_up(member):
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


def tier_for(value, ladder=None):
    """The highest tier whose threshold ``value`` reaches."""
    best = None
    for tier in ladder if ladder is not None else Tier.ladder():
        if tier.threshold <= value:
            best = tier
    return best


def _upgraded_tier(program, member, value, this_purchase):
    """The tier the member qualifies for now, if higher than the current one (else None).

    ``value`` is the qualifying value before this purchase (None: at the top already);
    ``this_purchase`` is the qualifying amount of the purchase not yet written.
    """
    if value is None:
        return None
    if program.tier_qualification == ProgramSettings.Qualification.COUNT:
        value += 1 if this_purchase > 0 else 0
    else:
        value += this_purchase
    best = tier_for(value)
    if best is not None and best.threshold > member.tier.threshold:
        return best
    return None


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


def _replay(record, digest, what):
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
    except (IntegrityError, LoyaltyError):
        existing = (
            Purchase.objects.filter(store=store, external_id=external_id)
            .only("fingerprint", "response")
            .first()
        )
        if existing is None:
            raise
        return _replay(existing, digest, _("This receipt"))


@transaction.atomic(durable=True)
def _record_purchase(
    *,
    store,
    external_id,
    amount,
    occurred_at,
    card_number,
    channel,
    lines,
    redeem_points,
    coupon_code,
    historical,
    earn,
    staff,
    now,
    digest,
):
    program = ProgramSettings.cached()
    member = None
    if card_number is not None:
        member, balance_before, qualifying = _lock_buyer(program, card_number, now, occurred_at)
        _check_member_can_buy(member)
    coupon = None
    if coupon_code:
        coupon = coupon_effect(
            code=coupon_code,
            member_id=member.pk if member else None,
            amount=amount,
            lines=lines,
            now=now,
        )
    multiplier = Decimal(1)
    if member is not None and earn:
        multiplier = campaign_multiplier(member.pk, store, occurred_at)
    quote = price(
        program,
        tier=member.tier if member else None,
        amount=amount,
        lines=lines,
        redeem_points=redeem_points,
        available=balance_before.available if member else 0,
        coupon_discount=coupon.discount if coupon else Decimal(0),
        multiplier=multiplier,
        earn_rate=partner_rate(store),
    )
    earned = quote.earn_points if earn else 0
    purchase = Purchase(
        store=store,
        external_id=external_id,
        member=member,
        occurred_at=occurred_at,
        channel=channel,
        amount=quote.amount,
        discount_amount=quote.discount_amount,
        redeemed_points=quote.redeem_points,
        redeemed_value=quote.redeemed_value,
        paid_amount=quote.paid_amount,
        earned_points=earned,
        coupon_code=coupon_code,
        tier=member.tier if member else None,
        qualifying_amount=quote.paid_amount,
        is_historical=historical,
        fingerprint=digest,
    )
    balance = tier = new_tier = None
    if member is not None:
        available_from, expires_at = ledger.lot_window(program, min(occurred_at, now))
        now_available = available_from <= now
        new_tier = _upgraded_tier(program, member, qualifying, quote.paid_amount)
        tier = new_tier or member.tier
        balance = ledger.Balance(
            available=balance_before.available
            - quote.redeem_points
            + (earned if now_available else 0),
            pending=balance_before.pending + (0 if now_available else earned),
        )
    # The answer is known before anything is written, so it goes in with the receipt (a repeat
    # of the request is answered from it) rather than in a second statement.
    body = _purchase_body(purchase, member, balance, tier)
    purchase.response = json.dumps(body)
    purchase.save(force_insert=True)
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
    if member is not None:
        start_balance, start_debt = member.points_balance, member.points_debt
        if quote.redeem_points:
            ledger.debit(
                member,
                points=quote.redeem_points,
                kind=EntryKind.REDEEM,
                now=now,
                purchase=purchase,
                available=balance_before.available,
                staff=staff,
            )
        if earned:
            ledger.credit(
                member,
                points=earned,
                kind=EntryKind.EARN,
                now=now,
                available_from=available_from,
                expires_at=expires_at,
                purchase=purchase,
                staff=staff,
            )
        referral = reward_referral(program, member, purchase, now)
        tier_fields = {}
        if new_tier is not None:
            tier_fields = {"tier": new_tier, "tier_since": now, "below_tier_since": None}
        ledger.save_member_points(
            member,
            balance_delta=member.points_balance - start_balance,
            debt_delta=member.points_debt - start_debt,
            **tier_fields,
        )
        if referral:  # a referred friend's first purchase: the reward is part of the answer
            balance = ledger.Balance(balance.available + referral, balance.pending)
            body = _purchase_body(purchase, member, balance, tier)
            Purchase.objects.filter(pk=purchase.pk).update(response=json.dumps(body))
    return Outcome(body=body)


def _refund_body(refund, purchase, member, balance):
    return {
        "refund_id": refund.refund_id,
        "external_id": purchase.external_id,
        "card_number": member.card_number if member else None,
        "amount": money_str(refund.amount),
        "refunded_amount": money_str(purchase.refunded_amount),
        "reversed_points": refund.reversed_points,
        "returned_points": refund.returned_points,
        "balance": balance.as_dict() if balance else None,
    }


@retry_on_conflict
def refund_purchase(*, store, external_id, refund_id, amount, staff=None, now=None):
    """Refund all or part of a receipt; points earned are reversed and points spent come back.

    Cumulative rule: after refunds totalling R of a purchase of amount A that earned E and spent
    S points, floor(E×R/A) have been reversed and floor(S×R/A) returned in all. Idempotent by
    refund_id. Raises ``not_found``, ``refund_exceeds_purchase``, ``idempotency_conflict``.
    """
    digest = fingerprint(
        {
            "store": store.pk,
            "external_id": external_id,
            "refund_id": refund_id,
            "amount": money_str(amount),
        }
    )
    existing = Refund.objects.filter(store=store, refund_id=refund_id).first()
    if existing is not None:
        return _replay(existing, digest, _("This refund"))
    try:
        return _refund_purchase(
            store=store,
            external_id=external_id,
            refund_id=refund_id,
            amount=money(amount),
            staff=staff,
            now=now or timezone.now(),
            digest=digest,
        )
    except IntegrityError:
        existing = Refund.objects.filter(store=store, refund_id=refund_id).first()
        if existing is None:
            raise
        return _replay(existing, digest, _("This refund"))


@transaction.atomic(durable=True)
def _refund_purchase(*, store, external_id, refund_id, amount, staff, now, digest):
    found = (
        Purchase.objects.filter(store=store, external_id=external_id)
        .values_list("pk", "member_id")
        .first()
    )
    if found is None:
        raise LoyaltyError(
            "not_found",
            _("No purchase %(id)s in this store.") % {"id": external_id},
            status_code=404,
        )
    purchase_id, member_id = found
    # Lock order everywhere: member first, then the purchase.
    member = lock_member(member_id) if member_id else None
    purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
    left = purchase.amount - purchase.refunded_amount
    if amount > left:
        raise LoyaltyError(
            "refund_exceeds_purchase",
            _("At most %(left)s of this purchase can still be refunded.") % {"left": left},
            fields={"amount": [str(_("More than what remains of the purchase."))]},
        )
    total = purchase.refunded_amount + amount
    reverse = ledger.floor_points(purchase.earned_points * total / purchase.amount)
    reverse -= purchase.reversed_points
    give_back = ledger.floor_points(purchase.redeemed_points * total / purchase.amount)
    give_back -= purchase.returned_points
    remaining_paid = money(purchase.paid_amount * (purchase.amount - total) / purchase.amount)
    refund = Refund.objects.create(
        store=store,
        purchase=purchase,
        refund_id=refund_id,
        amount=amount,
        reversed_points=reverse,
        returned_points=give_back,
        qualifying_amount=purchase.qualifying_amount - remaining_paid,
        fingerprint=digest,
        created_by=staff,
        created_at=now,
    )
    Purchase.objects.filter(pk=purchase.pk).update(
        refunded_amount=total,
        reversed_points=F("reversed_points") + reverse,
        returned_points=F("returned_points") + give_back,
        qualifying_amount=remaining_paid,
    )
    purchase.refunded_amount = total
    balance = None
    if member is not None:
        start_balance, start_debt = member.points_balance, member.points_debt
        if reverse:
            _reverse_points(member, purchase, refund, reverse, now, staff)
        if give_back:
            _return_points(member, purchase, refund, give_back, now, staff)
        ledger.save_member_points(
            member,
            balance_delta=member.points_balance - start_balance,
            debt_delta=member.points_debt - start_debt,
        )
        balance = ledger.balance_of(member, now)
    body = _refund_body(refund, purchase, member, balance)
    Refund.objects.filter(pk=refund.pk).update(response=json.dumps(body))
    return Outcome(body=body)


def _reverse_points(member, purchase, refund, points, now, staff):
    """Take earned points back: from the purchase's own lot first, then others, then as debt."""
    own = list(PointsLot.objects.filter(purchase=purchase, remaining__gt=0, expires_at__gt=now))
    _taken, left = ledger.take_from_lots(own, points)
    if left:
        others = ledger.open_lots(member, now, include_pending=True).exclude(purchase=purchase)
        _taken, left = ledger.take_from_lots(others, left)
    member.points_debt += left
    member.points_balance -= points
    ledger.add_entry(
        member,
        EntryKind.REFUND_REVERSAL,
        -points,
        now,
        purchase=purchase,
        refund=refund,
        staff=staff,
    )


def _return_points(member, purchase, refund, points, now, staff):
    """Give spent points back to the lots they came from, keeping their expiry.

    A lot that has expired meanwhile gives them back as a new lot that expires in N days.
    """
    program = ProgramSettings.load()
    left = points
    allocations = (
        LotAllocation.objects.filter(purchase=purchase, returned__lt=F("points"))
        .select_related("lot")
        .order_by("-lot__expires_at", "-id")
    )
    relot = 0
    for allocation in allocations:
        if left == 0:
            break
        give = min(allocation.points - allocation.returned, left)
        LotAllocation.objects.filter(pk=allocation.pk).update(returned=F("returned") + give)
        if allocation.lot.expires_at > now:
            PointsLot.objects.filter(pk=allocation.lot_id).update(remaining=F("remaining") + give)
        else:
            relot += give
        left -= give
    assert left == 0, "allocations disagree with the points spent"
    if relot:
        PointsLot.objects.create(
            member_id=member.pk,
            points=relot,
            remaining=relot,
            available_from=now,
            expires_at=now + timedelta(days=program.returned_points_expiry_days),
        )
    member.points_balance += points
    ledger.add_entry(
        member, EntryKind.REFUND_RETURN, points, now, purchase=purchase, refund=refund, staff=staff
    )

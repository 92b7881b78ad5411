"""What a purchase costs and earns (SPEC sections 2 and 3), with no side effects.

Earned points = floor(paid amount × tier earn rate × multipliers × line weights), where paid
amount = amount − discounts − value of points spent, and the multipliers are those of running
earn-multiplier campaigns whose test group holds the member (``loyalty.engine.multipliers``).
A coupon's discount comes off with the tier's; a partner store's earn rate replaces the tier's.
Recording a purchase is ``loyalty.engine.purchases``, refunding one ``loyalty.engine.refunds``.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Value
from django.db.models.functions import Coalesce, Least, Round
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger, multipliers
from loyalty.engine.coupons import coupon_effect
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import unknown_card
from loyalty.engine.money import money, money_str
from loyalty.models import ProductRule, ProgramSettings, Tier
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


def find_member(card_number):
    """The member behind a card; a merged card leads to the member it was merged into."""
    member = Member.objects.filter(card_number=card_number).only("id", "merged_into_id").first()
    if member is None:
        raise unknown_card(card_number)
    return member.merged_into_id or member.id


def _matches(rule, line):
    """A SKU rule names one product; a category rule every product of the category."""
    if rule.sku:
        return rule.sku == line.sku
    return bool(rule.category) and rule.category == line.category


def basket_shares(lines):
    """What of the basket earns and what points may pay for, each as a share of the lines' total:

    earning: sum(line × multiplier) ÷ sum(lines), an excluded line counting 0 and a boosted one
    its multiplier; payable: the share of lines no ``no_redeem`` rule names. (1, 1) without
    lines or rules."""
    total = lines_total(lines) if lines else Decimal(0)
    rules = list(ProductRule.objects.filter(is_active=True)) if total > 0 else []
    if not rules:
        return Decimal(1), Decimal(1)
    weighted = payable = Decimal(0)
    for line in lines:
        multiplier, may_pay = Decimal(1), True
        for rule in (rule for rule in rules if _matches(rule, line)):
            if rule.kind == ProductRule.Kind.NO_REDEEM:
                may_pay = False
            elif rule.kind == ProductRule.Kind.EXCLUDE:
                multiplier = Decimal(0)
            elif multiplier:
                multiplier *= rule.multiplier
        weighted += line.amount * multiplier
        payable += line.amount if may_pay else 0
    return weighted / total, payable / total


def tier_discount(amount, tier):
    """The tier's share of a purchase's discount: its percentage of the amount, to the kopeck."""
    return money(amount * tier.discount_percent / 100) if tier else Decimal("0.00")


def tier_discount_of_purchase():
    """The same rule as a query expression over ``Purchase``: the part of a recorded receipt's
    discount that was its tier's (the rest was its coupon's), for reports over many receipts."""
    zero = Value(Decimal("0.00"))
    share = Coalesce(Round(F("amount") * F("tier__discount_percent") / 100, 2), zero)
    return Least(F("discount_amount"), share)


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
    the program's share of what is left, less the lines a ``no_redeem`` rule names (in
    proportion). ``earn_rate`` replaces the tier's rate (a partner's).
    """
    discount = min(amount, tier_discount(amount, tier) + coupon_discount)
    after_discount = amount - discount
    earning, payable = basket_shares(lines)
    cap = ledger.floor_points(
        program.max_redeem_share * after_discount * payable / program.point_value
    )
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
        earn = ledger.floor_points(paid * rate * multiplier * earning)
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


def check_member_can_buy(member):
    """Only an active member buys with a card: ``member_blocked`` otherwise."""
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
        check_member_can_buy(member)
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

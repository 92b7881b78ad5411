"""Coupons at the till: whether one applies to a member and basket, and what it takes off."""

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.money import money
from loyalty.models import Coupon, CouponRedemption, audit


@dataclass(frozen=True)
class CouponEffect:
    coupon: Coupon
    discount: Decimal


def _refuse(message):
    return LoyaltyError("coupon_not_applicable", message, fields={"coupon_code": [str(message)]})


def coupon_effect(*, code, member_id, amount, lines, now):
    """The discount ``code`` gives on this basket, or ``coupon_not_applicable`` saying why."""
    coupon = Coupon.objects.filter(code__iexact=code.strip()).first()
    if coupon is None or not coupon.is_active:
        raise _refuse(_("Unknown or inactive coupon."))
    if coupon.valid_from and now < coupon.valid_from:
        raise _refuse(_("This coupon is not valid yet."))
    if coupon.valid_until and now >= coupon.valid_until:
        raise _refuse(_("This coupon has expired."))
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        raise _refuse(_("This coupon has been used up."))
    if coupon.member_id is not None:
        if coupon.member_id != member_id:
            raise _refuse(_("This coupon belongs to another member."))
        if CouponRedemption.objects.filter(coupon=coupon, member_id=member_id).exists():
            raise _refuse(_("This member has already used this coupon."))
    if amount < coupon.min_amount:
        raise _refuse(
            _("This coupon needs a purchase of at least %(amount)s.")
            % {"amount": coupon.min_amount}
        )
    discount = _discount(coupon, amount, lines)
    if discount <= 0:
        raise _refuse(_("Nothing in the basket qualifies for this coupon."))
    return CouponEffect(coupon=coupon, discount=min(discount, amount))


def _discount(coupon, amount, lines):
    if coupon.kind == Coupon.Kind.PERCENT:
        return money(amount * coupon.value / 100)
    if coupon.kind == Coupon.Kind.FIXED:
        return coupon.value
    matching = [line for line in lines if line.sku == coupon.sku]
    if not matching:
        return Decimal(0)
    cheapest = min(line.unit_price for line in matching)
    if coupon.kind == Coupon.Kind.FREE_PRODUCT:
        return cheapest
    units = sum((line.quantity for line in matching), Decimal(0))
    return (units // 2) * cheapest  # BOGO: every second unit free


def use_coupon(effect, *, purchase, member_id):
    """Record the use inside the purchase's transaction; the count can never pass the limit."""
    used = (
        Coupon.objects.filter(pk=effect.coupon.pk)
        .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
        .update(uses=F("uses") + 1)
    )
    if not used:
        raise _refuse(_("This coupon has been used up."))
    CouponRedemption.objects.create(
        coupon=effect.coupon,
        purchase=purchase,
        member_id=member_id,
        discount_amount=effect.discount,
    )


# Unique codes: 10 characters of an alphabet without look-alikes (0/O, 1/I/L): 31**10 ≈ 8·10^14
# codes per prefix, so with 100,000 issued a guess hits one about once in 8 billion tries.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
MAX_SERIES = 100_000


def new_code(prefix):
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{body}" if prefix else body


def _free_codes(prefix, count):
    """``count`` unique codes no coupon has yet: one query per round."""
    codes = set()
    while len(codes) < count:
        fresh = {new_code(prefix) for _ in range(count - len(codes))} - codes
        taken = set(Coupon.objects.filter(code__in=fresh).values_list("code", flat=True))
        codes |= fresh - taken
    return sorted(codes)


@transaction.atomic(durable=True)
def issue_general_coupons(*, terms, staff, code="", count=0, prefix="", max_uses=None):
    """General coupons, not tied to a member: one shared ``code`` that ``max_uses`` purchases
    may use (None: no limit), or ``count`` unique codes ``PREFIX-XXXXXXXXXX`` of one use each.

    ``terms`` holds the coupon's kind, value, sku, min_amount, valid_from and valid_until. Raises
    ``coupon_code_taken`` when the shared code exists. Audited once for the whole series.
    """
    if code:
        if Coupon.objects.filter(code__iexact=code).exists():
            raise LoyaltyError(
                "coupon_code_taken",
                _("A coupon with this code exists already."),
                fields={"code": [str(_("A coupon with this code exists already."))]},
            )
        coupons = [Coupon(code=code, max_uses=max_uses, **terms)]
    else:
        if not 0 < count <= MAX_SERIES:
            raise ValueError(f"count must be 1..{MAX_SERIES}")
        coupons = [Coupon(code=value, max_uses=1, **terms) for value in _free_codes(prefix, count)]
    Coupon.objects.bulk_create(coupons, batch_size=2000)
    audit(
        actor=staff,
        action="coupon.issue",
        obj=coupons[0] if code else None,
        after={
            "code": code or (f"{prefix}-…" if prefix else "…"),
            "count": len(coupons),
            "kind": terms["kind"],
            "value": str(terms["value"]),
            "max_uses": max_uses if code else 1,
        },
    )
    return coupons

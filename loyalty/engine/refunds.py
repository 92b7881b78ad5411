"""Refund all or part of a receipt (SPEC section 3): points earned are reversed, points spent
come back to the lots they came from; idempotent by refund id."""

import json

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import ledger, webhook_events
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_member, retry_on_conflict
from loyalty.engine.money import money, money_str
from loyalty.engine.purchases import Outcome, fingerprint, replay
from loyalty.models import EntryKind, LotAllocation, PointsLot, ProgramSettings, Purchase, Refund


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
        return replay(existing, digest, _("This refund"))
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
        return replay(existing, digest, _("This refund"))


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
    webhook_events.purchase_refunded(refund, purchase=purchase, member=member, store=store, now=now)
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
            expires_at=ledger.lot_expiry(program, now, source="returned"),
        )
    member.points_balance += points
    ledger.add_entry(
        member, EntryKind.REFUND_RETURN, points, now, purchase=purchase, refund=refund, staff=staff
    )

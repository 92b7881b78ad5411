"""Factories for the rows tests need, made through the services as a till or a page would.

A member is enrolled (``enrol_member``: card number, tier, audit row, consent) and a purchase is
recorded (``record_purchase``: ledger entries, lots, balance, tier): nothing here writes points
or lots itself, so every balance a test sees is one the engine computed (STYLE, Tests).
Phones and receipt numbers come from sequences, so two calls never collide.
"""

from decimal import Decimal

import factory
from django.utils import timezone

from loyalty.engine.purchases import record_purchase
from loyalty.models import Purchase, Store
from members.models import Member
from members.services import enrol_member


def _store(code):
    return factory.LazyFunction(lambda: Store.objects.get(code=code))


class MemberFactory(factory.Factory):
    """``MemberFactory(store=..., marketing_consent=True, now=...)``: any other keyword of
    ``enrol_member`` passes through."""

    class Meta:
        model = Member

    # +7913 and from 2,000,000: no fixture or test writes phones there by hand.
    phone = factory.Sequence(lambda n: f"+7913{2_000_000 + n:07d}")
    store = _store("MSK-01")

    @classmethod
    def _create(cls, model_class, **fields):
        return enrol_member(**fields)


class PurchaseFactory(factory.Factory):
    """``PurchaseFactory(member=..., amount="1000.00", occurred_at=...)``: returns the
    service's outcome (its ``body`` is the API's answer); any other keyword of
    ``record_purchase`` passes through."""

    class Meta:
        model = Purchase

    member = None
    external_id = factory.Sequence(lambda n: f"F-{n + 1}")
    store = _store("MSK-01")
    amount = Decimal("1000.00")
    occurred_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *, member, amount, **fields):
        return record_purchase(card_number=member.card_number, amount=Decimal(amount), **fields)

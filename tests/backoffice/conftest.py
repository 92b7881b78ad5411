import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.engine.purchases import record_purchase
from members.services import enrol_member

_phones = itertools.count(2_000_000)
_receipts = itertools.count(1)


@pytest.fixture
def make_member(stores):
    """A member enrolled in a store, with purchases there: ``make_member("SPB-01", 1000)``."""

    def make(store_code="MSK-01", *amounts, **fields):
        member = enrol_member(phone=f"+7913{next(_phones):07d}", store=stores[store_code], **fields)
        for amount in amounts:
            record_purchase(
                store=stores[store_code],
                external_id=f"B-{next(_receipts)}",
                card_number=member.card_number,
                amount=Decimal(amount),
                occurred_at=timezone.now(),
            )
        member.refresh_from_db()
        return member

    return make

import pytest
from django.utils import timezone

from tests.factories import MemberFactory, PurchaseFactory


@pytest.fixture
def make_member(stores):
    """A member enrolled in a store, with purchases there: ``make_member("SPB-01", 1000)``."""

    def make(store_code="MSK-01", *amounts, **fields):
        member = MemberFactory(store=stores[store_code], **fields)
        for amount in amounts:
            PurchaseFactory(
                member=member, store=stores[store_code], amount=amount, occurred_at=timezone.now()
            )
        member.refresh_from_db()
        return member

    return make

"""Transactional tests end with a flush; the append-only ledger must survive it as append-only.

On SQLite the flush deletes rows, which the append-only triggers refuse, so tests/conftest.py
sets the triggers aside during a flush. This shows that the flush empties the ledger and that the
triggers are back afterwards (on PostgreSQL the flush is a TRUNCATE and the same holds).
"""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from loyalty.defaults import install_default_program
from loyalty.engine.purchases import record_purchase
from loyalty.management.commands.seed_demo import seed_stores
from loyalty.models import LedgerEntry, ProgramSettings, Store, Tier
from members.services import enrol_member


def a_purchase(receipt):
    install_default_program(ProgramSettings, Tier)
    seed_stores()
    store = Store.objects.get(code="MSK-01")
    member = enrol_member(phone="+79161234567", store=store)
    record_purchase(
        store=store,
        external_id=receipt,
        amount=Decimal("1000.00"),
        occurred_at=timezone.now(),
        card_number=member.card_number,
    )


@pytest.mark.django_db(transaction=True)
def test_a_flush_empties_the_ledger_and_leaves_it_append_only():
    a_purchase("R-1")
    assert LedgerEntry.objects.exists()

    call_command("flush", interactive=False, verbosity=0)

    assert LedgerEntry.objects.count() == 0
    a_purchase("R-2")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.all().delete()

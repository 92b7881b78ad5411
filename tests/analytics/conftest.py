"""A small hand-made program whose figures are worked out by hand in the tests.

Every time is Moscow time (the project's zone and the demo stores'). Points expire 30 days after
they are earned, so the expiry job has something to expire. Everything goes through the services:
``enrol_member``, ``record_purchase`` and the ``expire_points`` job.

    member  home     enrolled      receipts (store)                                    balance
    A       MSK-01   2025-12-01    11-20 700 (history, no points), 01-20 1000 (+30),
                                   02-20 2000 (+60), 03-01 1000 spending 30 (+29)      59
    B       MSK-01   2026-02-05    02-10 500 (+15)                                     15
    C       SPB-01   2026-03-02    03-05 3000 (+90)                                    90
    D       MSK-01   2026-03-03    none                                                 0
    E       MSK-02   2026-01-05    01-25 800 at MSK-02 (+24)                             0
    anonymous        —             03-05 400, 03-06 600 (MSK-01)

The expiry job as of 2026-02-25 03:00 expires A's 30 points of 01-20 and E's 24 of 01-25.
The dashboard's snapshot is as of 2026-03-10 06:00, so its figures run through 2026-03-09.
"""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loyalty.engine.purchases import record_purchase
from loyalty.jobs.runner import run_job
from loyalty.models import ProgramSettings
from members.services import enrol_member

MSK = ZoneInfo("Europe/Moscow")
AS_OF = datetime(2026, 3, 10, 6, 0, tzinfo=MSK)


def msk(month, day, hour=12, minute=0, year=2026):
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


class Program:
    """Builds members and receipts through the services; ``buy`` numbers the receipts."""

    def __init__(self, stores):
        self.stores = stores
        self.members = {}
        self.receipts = 0

    def enrol(self, name, phone, store, when):
        member = enrol_member(
            phone=phone, store=self.stores[store], enrolled_at=when, now=when, first_name=name
        )
        self.members[name] = member
        return member

    def buy(self, name, store, when, amount, **options):
        self.receipts += 1
        member = self.members.get(name) if name else None
        return record_purchase(
            store=self.stores[store],
            external_id=f"R{self.receipts:05d}",
            card_number=member.card_number if member else None,
            amount=Decimal(amount),
            occurred_at=when,
            now=when,
            **options,
        )

    def balance(self, name):
        member = self.members[name]
        member.refresh_from_db()
        return member.points_balance


def build_program(stores):
    settings = ProgramSettings.load()
    settings.expiry_days = 30
    settings.save()
    program = Program(stores)
    program.enrol("A", "+79160000001", "MSK-01", msk(12, 1, 10, year=2025))
    program.enrol("E", "+79160000005", "MSK-02", msk(1, 5, 10))
    program.buy("A", "MSK-01", msk(11, 20, year=2025), "700.00", historical=True, earn=False)
    program.buy("A", "MSK-01", msk(1, 20), "1000.00")
    program.buy("E", "MSK-02", msk(1, 25), "800.00")
    program.enrol("B", "+79160000002", "MSK-01", msk(2, 5, 10))
    program.buy("B", "MSK-01", msk(2, 10), "500.00")
    program.buy("A", "MSK-01", msk(2, 20), "2000.00")
    run_job("expire_points", as_of=msk(2, 25, 3))
    program.buy("A", "MSK-01", msk(3, 1), "1000.00", redeem_points=30)
    program.enrol("C", "+79160000003", "SPB-01", msk(3, 2, 10))
    program.enrol("D", "+79160000004", "MSK-01", msk(3, 3, 10))
    program.buy("C", "SPB-01", msk(3, 5), "3000.00")
    program.buy(None, "MSK-01", msk(3, 5, 15), "400.00")
    program.buy(None, "MSK-01", msk(3, 6, 15), "600.00")
    return program


@pytest.fixture
def program(stores):
    return build_program(stores)


@pytest.fixture
def refreshed(program):
    """The program with the analytics job run as of AS_OF."""
    run_job("refresh_analytics", as_of=AS_OF)
    return program

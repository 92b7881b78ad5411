"""Fixtures for the job tests: members made by enrolment, purchases by the purchase service,
jobs run through the runner (as ``runjob`` and the beat do), and the ledger invariant."""

import itertools
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loyalty.engine.ledger import ledger_drift
from loyalty.engine.purchases import record_purchase
from loyalty.jobs.runner import run_job
from members.services import enrol_member

MSK = ZoneInfo("Europe/Moscow")
_phones = itertools.count(1)
_receipts = itertools.count(1)


def at(text):
    """A Moscow time: at("2025-03-01 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=MSK)


@pytest.fixture
def enrol(stores):
    def make(*, consent=True, now=None, **fields):
        return enrol_member(
            phone=f"+7913{next(_phones):07d}",
            marketing_consent=consent,
            store=stores["MSK-01"],
            now=now or at("2024-01-01 10:00"),
            enrolled_at=now or at("2024-01-01 10:00"),
            **fields,
        )

    return make


@pytest.fixture
def buy(stores):
    def purchase(member, amount, when, *, store="MSK-01", redeem=0):
        return record_purchase(
            store=stores[store],
            external_id=f"J-{next(_receipts)}",
            card_number=member.card_number,
            amount=Decimal(amount),
            occurred_at=when,
            redeem_points=redeem,
            now=when,
        ).body

    return purchase


@pytest.fixture
def run(db):
    """Run a job as the runner does; the ledger invariant must hold after every run."""

    def go(name, as_of, **options):
        job_run = run_job(name, as_of=as_of, **options)
        assert list(ledger_drift()) == []
        return job_run

    return go


@pytest.fixture
def interrupt_after(monkeypatch):
    """Make a run die right after its Nth finished batch, as a killed worker would."""
    from loyalty.engine import progress

    def arm(batches=1):
        real = progress.checkpoint
        done = []

        def dying(run, rows, **counts):
            real(run, rows, **counts)
            done.append(rows)
            if len(done) == batches:
                raise RuntimeError("worker killed")

        monkeypatch.setattr(progress, "checkpoint", dying)
        return monkeypatch.undo

    return arm

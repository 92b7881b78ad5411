"""Fixtures for the job tests: members made by enrolment, purchases by the purchase service,
jobs run through the runner (as ``runjob`` and the beat do), and the ledger invariant."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.engine.ledger import ledger_drift
from loyalty.jobs.runner import run_job
from tests.factories import MemberFactory, PurchaseFactory

MSK = ZoneInfo("Europe/Moscow")


def at(text):
    """A Moscow time: at("2025-03-01 09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=MSK)


@pytest.fixture
def enrol(stores):
    def make(*, consent=True, now=None, **fields):
        return MemberFactory(
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
        return PurchaseFactory(
            member=member,
            store=stores[store],
            amount=amount,
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

"""The two forms of tier qualification agree: the till's (one member, ``qualifying_value``,
``tier_for``) and the nightly job's (every member at once, ``QUALIFYING_SELECT``,
``EARNED_TIER_SQL``), on members with purchases and refunds on both sides of the window."""

from decimal import Decimal

import pytest
from django.db import connection

from loyalty.engine.money import money
from loyalty.engine.refunds import refund_purchase
from loyalty.engine.tiers import (
    EARNED_TIER_SQL,
    moments,
    qualifying_select,
    qualifying_value,
    tier_for,
    window_start,
)
from loyalty.models import ProgramSettings, Tier
from tests.jobs.conftest import at

AS_OF = at("2025-03-01 12:00")  # the window is (2024-03-01 12:00, 2025-03-01 12:00]


@pytest.fixture
def members(enrol, buy, stores):
    """Four members whose receipts and refunds fall on both sides of the window's start."""
    refunds = iter(range(1, 100))

    def refund(receipt, amount, when):
        refund_purchase(
            store=stores["MSK-01"],
            external_id=receipt["external_id"],
            refund_id=f"TF-{next(refunds)}",
            amount=Decimal(amount),
            now=when,
        )

    # Bought before the window and refunded inside it; bought inside and partly refunded.
    old_and_new = enrol()
    refund(buy(old_and_new, "8000.00", at("2024-02-01 10:00")), "3000.00", at("2024-04-01 10:00"))
    refund(buy(old_and_new, "5000.00", at("2024-06-01 10:00")), "1250.50", at("2024-06-02 10:00"))
    buy(old_and_new, "700.00", at("2025-02-28 10:00"))

    # Inside the window: one receipt refunded in full (it counts for nothing, not even once).
    refunded = enrol()
    refund(buy(refunded, "20000.00", at("2024-09-01 10:00")), "20000.00", at("2024-09-05 10:00"))
    buy(refunded, "15000.00", at("2024-10-01 10:00"))

    # On the edges: at the window's start (out) and at its end (in).
    edges = enrol()
    buy(edges, "30000.00", window_start(ProgramSettings.load(), AS_OF))
    buy(edges, "60000.00", AS_OF)

    # Everything before the window, a refund inside it.
    gone = enrol()
    refund(buy(gone, "90000.00", at("2023-12-01 10:00")), "100.00", at("2024-12-01 10:00"))
    return [old_and_new, refunded, edges, gone]


def job_values(program):
    with connection.cursor() as cursor:
        cursor.execute(qualifying_select(program), moments(program, AS_OF))
        return {member_id: money(value) for member_id, value, _held in cursor.fetchall()}


def job_tier_threshold(value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + EARNED_TIER_SQL.format(value="%s"), [value])
        (threshold,) = cursor.fetchone()
    return money(threshold) if threshold is not None else None


@pytest.mark.parametrize("measure", ProgramSettings.Qualification.values)
def test_the_till_and_the_job_give_the_same_qualifying_value(members, measure):
    program = ProgramSettings.load()
    program.tier_qualification = measure

    job = job_values(program)
    till = {member.pk: qualifying_value(program, member.pk, AS_OF) for member in members}

    assert till == {member.pk: job.get(member.pk, money(0)) for member in members}
    assert till[members[-1].pk] == 0  # all of it before the window
    assert len(set(till.values())) == len(members) or measure != "spend"


def test_the_till_and_the_job_give_the_same_tier_for_a_value(db):
    ladder = Tier.ladder()
    values = [Decimal(0)]
    for tier in ladder:
        values += [tier.threshold - Decimal("0.01"), tier.threshold, tier.threshold + 1]
    for value in values:
        best = tier_for(value, ladder)
        assert (best.threshold if best else None) == job_tier_threshold(value), value


def test_tier_for_reads_thresholds_through_key_with_a_default():
    """The data generator's use: integer cents in ``threshold_c``, the lowest tier by default."""

    class Step:
        def __init__(self, threshold_c):
            self.threshold_c = threshold_c

    ladder = [Step(0), Step(1_500_000), Step(5_000_000)]
    by_cents = {"key": lambda step: step.threshold_c, "default": ladder[0]}

    assert tier_for(1_499_999, ladder, **by_cents) is ladder[0]
    assert tier_for(1_500_000, ladder, **by_cents) is ladder[1]
    assert tier_for(9_000_000, ladder, **by_cents) is ladder[2]
    assert tier_for(-1, ladder, **by_cents) is ladder[0]
    assert tier_for(-1, ladder, key=by_cents["key"]) is None

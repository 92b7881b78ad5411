"""The what-if replay: the last 12 months under today's rules and under a proposal, worked out
by hand. Points expire 30 days after they are earned today; the tiers are the default program's
(bronze 3% from 0, silver 5% from 15,000, gold 7% from 50,000), points pay at most half.

The proposal: bronze 2%, silver 10% from 8,000, gold 7% from 50,000, 60 days, points pay at
most 20%. Period: 2026-01-01 00:00 to 2027-01-01 00:00 (Moscow).

    A  2025-12-20 20,000 (before the period: +600 at bronze, expires 01-19 today)
       2026-01-10  1,000 spending 400 (silver: 20,000 in the window)
           today:    spends 400, earns floor(600 × 5%) = 30, expires 02-09
           proposal: spends min(400, 20% of 1,000) = 200, earns floor(800 × 10%) = 80 (03-11)
           expired today: 200 left of the 600 on 01-19 and the 30 on 02-09 = 230
           expired in the proposal: 400 of the 600 on 01-19 and the 80 on 03-11 = 480
    B  2026-06-01 10,000  today bronze +300 (07-01); proposal bronze +200 (07-31)
       2026-06-02 10,000  today bronze +300 (07-02); proposal silver (10,000 ≥ 8,000) +1,000
       2026-12-20  1,000  today silver +50 (2027-01-19); proposal silver +100 (2027-02-18)
           expired: today 600, proposal 1,200; left at the end: today 50, proposal 100
"""

from datetime import datetime
from decimal import Decimal

import pytest

from analytics import whatif
from analytics.whatif import Rules, Step
from loyalty.models import ProgramSettings, Tier
from tests.analytics.conftest import MSK, Program, msk

END = datetime(2027, 1, 1, 0, 0, tzinfo=MSK)


@pytest.fixture
def history(stores):
    settings = ProgramSettings.load()
    settings.expiry_days = 30
    settings.save()
    program = Program(stores)
    program.enrol("A", "+79160000021", "MSK-01", msk(12, 1, 10, year=2025))
    program.buy("A", "MSK-01", msk(12, 20, year=2025), "20000.00")
    program.buy("A", "MSK-01", msk(1, 10), "1000.00", redeem_points=400)
    program.enrol("B", "+79160000022", "MSK-01", msk(5, 1, 10))
    program.buy("B", "MSK-01", msk(6, 1), "10000.00")
    program.buy("B", "MSK-01", msk(6, 2), "10000.00")
    program.buy("B", "MSK-01", msk(12, 20), "1000.00")
    return program


def proposal():
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}
    return Rules(
        steps=(
            Step(tiers["bronze"], Decimal("0"), Decimal("0.02")),
            Step(tiers["silver"], Decimal("8000"), Decimal("0.10")),
            Step(tiers["gold"], Decimal("50000"), Decimal("0.07")),
        ),
        expiry_days=60,
        cap=Decimal("0.2"),
    )


def test_the_replay_gives_the_hand_worked_figures_for_both_rule_sets(history):
    result = whatif.replay(proposal(), as_of=END)
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}

    assert (result.purchases, result.recorded_issued, result.recorded_redeemed) == (4, 680, 400)
    today, new = result.today, result.proposal
    assert (today.issued, today.redeemed, today.expired, today.liability) == (680, 400, 830, 50)
    assert (new.issued, new.redeemed, new.expired, new.liability) == (1380, 200, 1680, 100)
    assert (today.shortfall, new.shortfall) == (0, 0)
    # Points whose expiry fell in the period: A's 600 and 30 (80), B's two lots.
    assert (today.due, new.due) == (1230, 1880)
    assert today.breakage_rate == Decimal("0.674797")  # 830 / 1230
    assert new.breakage_rate == Decimal("0.893617")  # 1680 / 1880
    assert (today.expected_breakage, new.expected_breakage) == (33, 89)
    assert new.liability_value == Decimal("100.00")
    assert new.deferred_value == Decimal("11.00")
    # At the end A has 1,000 in the window (bronze), B 21,000 (silver either way).
    assert today.tiers == {tiers["bronze"]: 1, tiers["silver"]: 1, tiers["gold"]: 0}
    assert new.tiers == today.tiers


def test_today_replayed_matches_what_was_recorded(history):
    """Today's rules replayed earn and spend exactly what the engine recorded."""
    result = whatif.replay(Rules.today(), as_of=END)

    assert result.today == result.proposal
    assert (result.today.issued, result.today.redeemed) == (680, 400)
    assert (result.recorded_issued, result.recorded_redeemed) == (680, 400)


def test_a_lower_threshold_moves_members_up_at_the_end(history):
    tiers = {tier.code: tier.pk for tier in Tier.objects.all()}
    rules = Rules.today()
    lowered = Rules(
        steps=(
            rules.steps[0],
            rules.steps[1],
            Step(tiers["gold"], Decimal("21000"), Decimal("0.07")),
        ),
        expiry_days=rules.expiry_days,
        cap=rules.cap,
    )

    result = whatif.replay(lowered, as_of=END)

    assert result.proposal.tiers == {tiers["bronze"]: 1, tiers["silver"]: 0, tiers["gold"]: 1}
    # B's 12-20 purchase (21,000 before it? no: 20,000) still earns at silver: nothing changes.
    assert result.proposal.issued == result.today.issued

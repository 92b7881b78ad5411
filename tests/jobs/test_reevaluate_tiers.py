"""reevaluate_tiers: upgrade at once, downgrade only after the grace period, paid tiers hold."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from loyalty.engine.memberships import join_membership
from loyalty.engine.purchases import refund_purchase
from loyalty.jobs.runner import run_job
from loyalty.models import MembershipPlan, Tier
from members.models import Member
from tests.jobs.conftest import at


def tier_of(member):
    return Member.objects.select_related("tier").get(pk=member.pk).tier.code


@pytest.fixture
def silver_member(enrol, buy):
    """Silver since 1 March 2024 (15,000 spent that day): the spend leaves the window on
    1 March 2025, the grace period of 30 days ends on 31 March 2025."""
    member = enrol()
    buy(member, "15000.00", at("2024-03-01 10:00"))
    assert tier_of(member) == "silver"
    return member


def test_member_stays_while_the_spend_is_in_the_window(run, silver_member):
    assert run("reevaluate_tiers", at("2025-03-01 09:59")).rows == 0
    member = Member.objects.get(pk=silver_member.pk)
    assert (member.tier.code, member.below_tier_since) == ("silver", None)


def test_falling_below_starts_the_grace_period_without_a_downgrade(run, silver_member):
    marked = run("reevaluate_tiers", at("2025-03-01 10:00"))

    member = Member.objects.get(pk=silver_member.pk)
    assert marked.rows == 1
    assert (member.tier.code, member.below_tier_since) == ("silver", at("2025-03-01 10:00"))


def test_downgrade_waits_for_the_whole_grace_period(run, silver_member):
    run("reevaluate_tiers", at("2025-03-01 10:00"))

    assert run("reevaluate_tiers", at("2025-03-30 10:00")).rows == 0
    assert run("reevaluate_tiers", at("2025-03-31 09:59")).rows == 0
    assert tier_of(silver_member) == "silver"

    run("reevaluate_tiers", at("2025-03-31 10:00"))

    member = Member.objects.get(pk=silver_member.pk)
    assert (member.tier.code, member.tier_since, member.below_tier_since) == (
        "bronze",
        at("2025-03-31 10:00"),
        None,
    )


def test_reevaluate_tiers_run_twice_changes_nothing_the_second_time(run, silver_member):
    run("reevaluate_tiers", at("2025-03-01 10:00"))
    assert run("reevaluate_tiers", at("2025-03-01 10:00")).rows == 0
    run("reevaluate_tiers", at("2025-03-31 10:00"))
    assert run("reevaluate_tiers", at("2025-03-31 10:00")).rows == 0
    assert tier_of(silver_member) == "bronze"


def test_qualifying_again_within_the_grace_clears_it(run, buy, silver_member):
    run("reevaluate_tiers", at("2025-03-01 10:00"))
    buy(silver_member, "15000.00", at("2025-03-10 10:00"))

    run("reevaluate_tiers", at("2025-03-11 10:00"))

    member = Member.objects.get(pk=silver_member.pk)
    assert (member.tier.code, member.below_tier_since) == ("silver", None)


def test_the_job_upgrades_when_thresholds_are_lowered(run, enrol, buy):
    member = enrol()
    buy(member, "5000.00", at("2025-01-10 10:00"))
    Tier.objects.filter(code="silver").update(threshold=Decimal("5000.00"))

    upgraded = run("reevaluate_tiers", at("2025-01-11 00:00"))

    member.refresh_from_db()
    assert (upgraded.rows, member.tier.code, member.tier_since) == (
        1,
        "silver",
        at("2025-01-11 00:00"),
    )


def test_threshold_is_met_exactly_with_cents(run, enrol, buy):
    member = enrol()
    for amount in ("0.10", "0.20", "14999.70"):
        buy(member, amount, at("2024-12-01 10:00"))
    Member.objects.filter(pk=member.pk).update(tier=Tier.objects.get(code="bronze"))

    run("reevaluate_tiers", at("2024-12-02 10:00"))

    assert tier_of(member) == "silver"


def test_a_live_paid_membership_holds_its_tier(run, enrol):
    plan = MembershipPlan.objects.create(
        code="gold-club",
        name="Gold club",
        fee=Decimal("299.00"),
        period_days=30,
        tier=Tier.objects.get(code="gold"),
    )
    member = enrol()
    join_membership(member_id=member.pk, plan_id=plan.pk, now=at("2025-01-01 10:00"))
    assert tier_of(member) == "gold"

    assert run("reevaluate_tiers", at("2025-01-20 10:00")).rows == 0
    assert tier_of(member) == "gold"


def test_reevaluate_tiers_interrupted_then_rerun_marks_each_member_once(
    run, enrol, buy, interrupt_after
):
    members = [enrol() for _ in range(3)]
    for member in members:
        buy(member, "15000.00", at("2024-03-01 10:00"))
    undo = interrupt_after(1)
    with pytest.raises(RuntimeError):
        run_job("reevaluate_tiers", as_of=at("2025-03-01 10:00"), batch_size=1)
    undo()

    assert run("reevaluate_tiers", at("2025-03-01 10:00"), batch_size=1).rows == 2
    assert set(
        Member.objects.filter(pk__in=[m.pk for m in members]).values_list(
            "below_tier_since", flat=True
        )
    ) == {at("2025-03-01 10:00")}


def test_a_member_below_for_longer_than_the_grace_falls_on_the_first_run(run, silver_member):
    # No run saw the spend leave the window on 1 March: the data says it did, 45 days ago.
    fell = run("reevaluate_tiers", at("2025-04-15 03:00"))

    member = Member.objects.get(pk=silver_member.pk)
    assert (fell.rows, member.tier.code, member.tier_since, member.below_tier_since) == (
        1,
        "bronze",
        at("2025-04-15 03:00"),
        None,
    )


@pytest.mark.parametrize(
    ("as_of", "tier"),
    [
        ("2025-03-30 10:00", "silver"),  # the day before the grace ends
        ("2025-03-31 09:59", "silver"),  # a minute before 30 days below
        ("2025-03-31 10:00", "bronze"),  # 30 days below: the grace is over
        ("2025-04-01 10:00", "bronze"),  # the day after
    ],
)
def test_runjob_as_of_around_the_end_of_the_grace(silver_member, as_of, tier):
    call_command("runjob", "reevaluate_tiers", "--as-of", at(as_of).isoformat(), stdout=StringIO())

    assert tier_of(silver_member) == tier


def test_nightly_runs_downgrade_the_night_the_grace_ends(run, silver_member):
    for night in ("2025-03-01", "2025-03-15", "2025-03-30", "2025-03-31"):
        run("reevaluate_tiers", at(f"{night} 03:00"))
    assert tier_of(silver_member) == "silver"  # 31 March 03:00: 29 days and 17 hours below

    run("reevaluate_tiers", at("2025-04-01 03:00"))

    assert tier_of(silver_member) == "bronze"


def test_back_above_during_the_grace_between_runs_starts_a_new_grace(run, enrol, buy):
    member = enrol()
    buy(member, "10000.00", at("2024-03-01 10:00"))
    buy(member, "5000.00", at("2024-03-20 10:00"))
    assert tier_of(member) == "silver"
    run("reevaluate_tiers", at("2025-03-01 10:00"))  # 10,000 left the window: 5,000, below
    buy(member, "10000.00", at("2025-03-05 10:00"))  # 15,000: above again, no run saw it
    # 20 March 10:00 the 5,000 of last year leaves: 10,000, below again, a new grace begins.

    run("reevaluate_tiers", at("2025-03-31 10:00"))
    run("reevaluate_tiers", at("2025-04-19 09:59"))
    assert tier_of(member) == "silver"

    run("reevaluate_tiers", at("2025-04-19 10:00"))
    assert tier_of(member) == "bronze"


def test_gold_falls_past_silver_to_bronze_at_once(run, enrol, buy):
    member = enrol()
    buy(member, "50000.00", at("2024-03-01 10:00"))
    assert tier_of(member) == "gold"

    fell = run("reevaluate_tiers", at("2025-03-31 10:00"))

    member.refresh_from_db()
    assert (fell.rows, member.tier.code, member.tier_since) == (
        1,
        "bronze",
        at("2025-03-31 10:00"),
    )


def test_gold_falls_only_as_far_as_the_grace_allows(run, enrol, buy):
    member = enrol()
    buy(member, "35000.00", at("2024-03-01 10:00"))
    buy(member, "15000.00", at("2024-03-02 10:00"))
    assert tier_of(member) == "gold"
    # 1 March 2025 the 35,000 leaves (15,000: Silver's), 2 March the 15,000 too (Bronze's).

    run("reevaluate_tiers", at("2025-03-31 10:00"))
    member = Member.objects.get(pk=member.pk)
    assert (member.tier.code, member.below_tier_since) == ("silver", at("2025-03-31 10:00"))

    run("reevaluate_tiers", at("2025-04-01 09:59"))
    assert tier_of(member) == "silver"
    run("reevaluate_tiers", at("2025-04-01 10:00"))
    assert tier_of(member) == "bronze"


def test_a_refund_within_the_window_counts_against_the_held_spend(run, enrol, buy, stores):
    member = enrol()
    receipt = buy(member, "20000.00", at("2024-06-01 10:00"))
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id="R-1",
        amount=Decimal("10000.00"),
        now=at("2024-06-02 10:00"),
    )

    run("reevaluate_tiers", at("2024-07-15 03:00"))

    # Net of the refund the year's spend is 10,000, below Silver's 15,000 ever since.
    assert tier_of(member) == "bronze"


@pytest.fixture
def refunded_silver_member(enrol, buy, stores):
    """Silver from 1 January 2025 (20,000); 10,000 of it refunded 1 March 2025 10:00, which puts
    the year's spend at 10,000, below Silver's 15,000, from that moment: Silver until 31 March."""
    member = enrol()
    receipt = buy(member, "20000.00", at("2025-01-01 10:00"))
    assert tier_of(member) == "silver"
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id="R-1",
        amount=Decimal("10000.00"),
        now=at("2025-03-01 10:00"),
    )
    return member


def test_a_refund_starts_the_grace_period_rather_than_a_downgrade(run, refunded_silver_member):
    marked = run("reevaluate_tiers", at("2025-03-02 10:00"))

    member = Member.objects.get(pk=refunded_silver_member.pk)
    assert (marked.rows, member.tier.code, member.below_tier_since) == (
        1,
        "silver",
        at("2025-03-02 10:00"),
    )


@pytest.mark.parametrize(
    ("as_of", "tier"),
    [
        ("2025-03-02 10:00", "silver"),  # the day after the refund
        ("2025-03-31 09:59", "silver"),  # a minute before 30 days below
        ("2025-03-31 10:00", "bronze"),  # 30 days since the refund: the grace is over
        ("2025-04-01 10:00", "bronze"),
    ],
)
def test_runjob_as_of_around_the_end_of_the_grace_after_a_refund(
    refunded_silver_member, as_of, tier
):
    call_command("runjob", "reevaluate_tiers", "--as-of", at(as_of).isoformat(), stdout=StringIO())

    assert tier_of(refunded_silver_member) == tier


def test_nightly_runs_after_a_refund_downgrade_the_night_the_grace_ends(
    run, refunded_silver_member
):
    for night in ("2025-03-02", "2025-03-15", "2025-03-31"):
        run("reevaluate_tiers", at(f"{night} 03:00"))
    assert tier_of(refunded_silver_member) == "silver"  # 31 March 03:00: 29 days 17 hours below

    run("reevaluate_tiers", at("2025-04-01 03:00"))

    assert tier_of(refunded_silver_member) == "bronze"


def test_raising_a_threshold_starts_the_grace_period_rather_than_a_downgrade(run, enrol, buy):
    member = enrol()
    buy(member, "20000.00", at("2025-01-01 10:00"))
    run("reevaluate_tiers", at("2025-02-28 03:00"))
    Tier.objects.filter(code="silver").update(threshold=Decimal("25000.00"))

    run("reevaluate_tiers", at("2025-03-01 03:00"))
    member = Member.objects.get(pk=member.pk)
    assert (member.tier.code, member.below_tier_since) == ("silver", at("2025-03-01 03:00"))

    run("reevaluate_tiers", at("2025-03-31 02:59"))
    assert tier_of(member) == "silver"
    run("reevaluate_tiers", at("2025-03-31 03:00"))
    assert tier_of(member) == "bronze"


def test_a_tier_set_by_hand_falls_only_after_the_grace_period(run, enrol):
    member = enrol()
    Member.objects.filter(pk=member.pk).update(tier=Tier.objects.get(code="gold"))

    run("reevaluate_tiers", at("2025-03-01 03:00"))
    member = Member.objects.get(pk=member.pk)
    assert (member.tier.code, member.below_tier_since) == ("gold", at("2025-03-01 03:00"))

    run("reevaluate_tiers", at("2025-03-31 02:59"))
    assert tier_of(member) == "gold"
    run("reevaluate_tiers", at("2025-03-31 03:00"))
    member = Member.objects.get(pk=member.pk)
    assert (member.tier.code, member.tier_since, member.below_tier_since) == (
        "bronze",
        at("2025-03-31 03:00"),
        None,
    )


def test_a_refund_of_a_purchase_back_above_counts_from_its_own_moment(run, enrol, buy, stores):
    # Below Silver since 1 March (the 2024 spend left the window); a 15,000 purchase on 10 March
    # brings it back above, and its refund in full on 12 March below again: a new grace from the
    # refund, not from 1 March.
    member = enrol()
    buy(member, "15000.00", at("2024-03-01 10:00"))
    run("reevaluate_tiers", at("2025-03-01 10:00"))
    receipt = buy(member, "15000.00", at("2025-03-10 10:00"))
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id="R-2",
        amount=Decimal("15000.00"),
        now=at("2025-03-12 10:00"),
    )

    run("reevaluate_tiers", at("2025-04-11 09:59"))
    assert tier_of(member) == "silver"
    run("reevaluate_tiers", at("2025-04-11 10:00"))
    assert tier_of(member) == "bronze"

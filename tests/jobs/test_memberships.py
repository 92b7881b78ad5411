"""Paid memberships: join, trial, renewal and lapse by the renew_memberships job."""

from datetime import timedelta
from decimal import Decimal

import pytest

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.memberships import (
    cancel_membership,
    join_membership,
    lapse_membership,
    renew_membership,
)
from loyalty.jobs.runner import run_job
from loyalty.models import Membership, MembershipPeriod, MembershipPlan, Tier
from members.models import Member
from messaging.models import Outbox
from tests.jobs.conftest import at

JOINED = at("2025-01-01 10:00")
PERIOD_END = JOINED + timedelta(days=30)  # 31 January 10:00


@pytest.fixture
def plan(db, stores):
    return MembershipPlan.objects.create(
        code="plus",
        name="Plus",
        fee=Decimal("299.00"),
        period_days=30,
        tier=Tier.objects.get(code="gold"),
        perks=["free_delivery"],
        bonus_points=100,
        trial_days=14,
    )


def points_of(member):
    return Member.objects.get(pk=member.pk).points_balance


def test_joining_charges_the_first_period_grants_the_tier_and_bonus(enrol, plan):
    member = enrol()

    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)

    member.refresh_from_db()
    assert (membership.status, membership.period_end) == ("active", PERIOD_END)
    assert list(membership.periods.values_list("kind", "fee")) == [("join", Decimal("299.00"))]
    assert (member.tier.code, member.points_balance) == ("gold", 100)
    assert Outbox.objects.get(member=member).purpose == "membership_joined"


def test_a_second_live_membership_is_refused(enrol, plan):
    member = enrol()
    join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)

    with pytest.raises(LoyaltyError) as error:
        join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    assert error.value.code == "membership_exists"


def test_free_trial_costs_nothing_and_is_offered_once(enrol, plan):
    member = enrol()

    trial = join_membership(member_id=member.pk, plan_id=plan.pk, trial=True, now=JOINED)

    assert (trial.status, trial.period_end) == ("trial", JOINED + timedelta(days=14))
    assert list(trial.periods.values_list("fee", flat=True)) == [Decimal("0")]
    assert points_of(member) == 0  # bonus points come with paid periods
    lapse_membership(membership_id=trial.pk, now=JOINED + timedelta(days=1))
    with pytest.raises(LoyaltyError) as error:
        join_membership(member_id=member.pk, plan_id=plan.pk, trial=True, now=JOINED)
    assert error.value.code == "trial_not_available"


def test_renewal_happens_when_the_period_ends_not_before(run, enrol, plan):
    member = enrol()
    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)

    assert run("renew_memberships", PERIOD_END - timedelta(days=1)).rows == 0
    assert run("renew_memberships", PERIOD_END - timedelta(seconds=1)).rows == 0
    renewed = run("renew_memberships", PERIOD_END)

    membership.refresh_from_db()
    assert renewed.counts == {"renewed": 1, "lapsed": 0}
    assert (membership.period_start, membership.period_end) == (
        PERIOD_END,
        PERIOD_END + timedelta(days=30),
    )
    assert list(membership.periods.values_list("kind", "fee")) == [
        ("join", Decimal("299.00")),
        ("renewal", Decimal("299.00")),
    ]
    assert points_of(member) == 200
    assert Outbox.objects.filter(member=member, purpose="membership_renewed").count() == 1


def test_renewal_run_twice_charges_once(run, enrol, plan):
    member = enrol()
    join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    run("renew_memberships", PERIOD_END + timedelta(hours=1))

    assert run("renew_memberships", PERIOD_END + timedelta(hours=1)).rows == 0
    assert MembershipPeriod.objects.count() == 2
    assert points_of(member) == 200


def test_missed_renewals_catch_up_one_period_at_a_time(run, enrol, plan):
    member = enrol()
    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)

    run("renew_memberships", JOINED + timedelta(days=65))

    membership.refresh_from_db()
    assert membership.period_end == JOINED + timedelta(days=90)
    assert MembershipPeriod.objects.filter(kind="renewal").count() == 2


def test_cancelled_membership_runs_to_the_end_then_lapses(run, enrol, plan):
    member = enrol()
    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    cancel_membership(membership_id=membership.pk, now=JOINED + timedelta(days=3))

    assert run("renew_memberships", PERIOD_END - timedelta(seconds=1)).rows == 0
    lapsed = run("renew_memberships", PERIOD_END)

    membership.refresh_from_db()
    assert lapsed.counts == {"renewed": 0, "lapsed": 1}
    assert (membership.status, membership.ended_at) == ("lapsed", PERIOD_END)
    assert Outbox.objects.filter(member=member, purpose="membership_lapsed").count() == 1
    assert run("renew_memberships", PERIOD_END).rows == 0


def test_after_a_lapse_the_paid_tier_falls_after_the_grace_period(run, enrol, plan):
    member = enrol()
    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    cancel_membership(membership_id=membership.pk, now=JOINED)
    run("renew_memberships", PERIOD_END)

    run("reevaluate_tiers", PERIOD_END + timedelta(hours=1))
    assert Member.objects.get(pk=member.pk).tier.code == "gold"
    run("reevaluate_tiers", PERIOD_END + timedelta(days=30, hours=1))
    assert Member.objects.get(pk=member.pk).tier.code == "bronze"


def test_trial_converts_to_paid_at_its_end_unless_cancelled(run, enrol, plan):
    converting, cancelling = enrol(), enrol()
    kept = join_membership(member_id=converting.pk, plan_id=plan.pk, trial=True, now=JOINED)
    dropped = join_membership(member_id=cancelling.pk, plan_id=plan.pk, trial=True, now=JOINED)
    cancel_membership(membership_id=dropped.pk, now=JOINED)

    run("renew_memberships", JOINED + timedelta(days=14))

    kept.refresh_from_db()
    dropped.refresh_from_db()
    assert (kept.status, kept.period_end) == ("active", JOINED + timedelta(days=44))
    assert dropped.status == "lapsed"
    assert points_of(converting) == 100


def test_manual_renewal_pays_the_next_period(enrol, plan):
    member = enrol()
    membership = join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)

    renewed = renew_membership(membership_id=membership.pk, now=JOINED + timedelta(days=20))

    assert renewed.period_end == PERIOD_END + timedelta(days=30)
    assert points_of(member) == 200


def test_renew_memberships_interrupted_then_rerun_renews_each_once(
    run, enrol, plan, interrupt_after
):
    members = [enrol() for _ in range(3)]
    for member in members:
        join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    undo = interrupt_after(1)
    with pytest.raises(RuntimeError):
        run_job("renew_memberships", as_of=PERIOD_END, batch_size=1)
    undo()

    run("renew_memberships", PERIOD_END, batch_size=1)

    assert MembershipPeriod.objects.filter(kind="renewal").count() == 3
    assert [points_of(m) for m in members] == [200, 200, 200]
    assert set(Membership.objects.values_list("period_end", flat=True)) == {
        PERIOD_END + timedelta(days=30)
    }


def test_the_plan_is_named_in_each_members_language_in_every_message(run, enrol, plan):
    plan.name_ru = "Плюс"
    plan.save(update_fields=["name_ru"])
    russian, english = enrol(language="ru"), enrol(language="en")
    for member in (russian, english):
        join_membership(member_id=member.pk, plan_id=plan.pk, now=JOINED)
    run("renew_memberships", PERIOD_END)  # set-based renewal
    lapse_membership(
        membership_id=Membership.objects.get(member=english).pk, now=PERIOD_END + timedelta(days=1)
    )
    cancel_membership(
        membership_id=Membership.objects.get(member=russian).pk, now=PERIOD_END + timedelta(days=1)
    )
    run("renew_memberships", PERIOD_END + timedelta(days=30))  # set-based lapse

    def plans(member):
        rows = Outbox.objects.filter(member=member).order_by("id")
        return [(row.purpose, row.context["plan"]) for row in rows]

    assert plans(russian) == [
        ("membership_joined", "Плюс"),
        ("membership_renewed", "Плюс"),
        ("membership_lapsed", "Плюс"),
    ]
    assert plans(english) == [
        ("membership_joined", "Plus"),
        ("membership_renewed", "Plus"),
        ("membership_lapsed", "Plus"),
    ]

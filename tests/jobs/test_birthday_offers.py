"""birthday_offers: the day, the day before, 29 February, once a year, consent, interruptions."""

from datetime import date, timedelta

import pytest

from loyalty.engine.purchases import refund_purchase
from loyalty.jobs.runner import run_job
from loyalty.models import BirthdayGrant, LedgerEntry, PointsLot
from members.models import Member
from messaging.models import Outbox
from tests.jobs.conftest import at


def points_of(member):
    return Member.objects.get(pk=member.pk).points_balance


def test_birthday_points_arrive_on_the_day_not_the_day_before(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))

    assert run("birthday_offers", at("2025-06-14 09:00")).rows == 0
    granted = run("birthday_offers", at("2025-06-15 09:00"))

    assert granted.rows == 1
    assert points_of(member) == 200
    lot = PointsLot.objects.get(member=member)
    assert (lot.points, lot.remaining) == (200, 200)
    assert lot.expires_at == at("2025-06-15 09:00") + timedelta(days=30)
    entry = LedgerEntry.objects.get(member=member)
    assert (entry.kind, entry.points, entry.reason, entry.job) == (
        "bonus",
        200,
        "birthday",
        "birthday_offers",
    )
    assert Outbox.objects.get(member=member).purpose == "birthday_offer"


def test_the_day_is_the_local_date(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))

    # 23:30 UTC on the 14th is already the 15th in Moscow.
    run("birthday_offers", at("2025-06-15 02:30"))

    assert points_of(member) == 200


def test_birthday_points_expire_30_days_later(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))
    run("birthday_offers", at("2025-06-15 09:00"))

    run("expire_points", at("2025-07-15 08:59"))
    assert points_of(member) == 200
    run("expire_points", at("2025-07-15 09:00"))
    assert points_of(member) == 0


def test_birthday_offer_run_twice_grants_once(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))
    run("birthday_offers", at("2025-06-15 09:00"))

    again = run("birthday_offers", at("2025-06-15 18:00"))

    assert again.rows == 0
    assert points_of(member) == 200
    assert Outbox.objects.filter(member=member).count() == 1


def test_birthday_offer_comes_again_next_year(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))
    run("birthday_offers", at("2025-06-15 09:00"))

    run("birthday_offers", at("2026-06-15 09:00"))

    assert list(BirthdayGrant.objects.filter(member=member).values_list("year", flat=True)) == [
        2025,
        2026,
    ]


def test_29_february_birthday_is_kept_on_29_february_in_a_leap_year(run, enrol):
    leapling = enrol(birth_date=date(2000, 2, 29))
    born_28th = enrol(birth_date=date(2000, 2, 28))

    run("birthday_offers", at("2024-02-28 09:00"))
    assert (points_of(leapling), points_of(born_28th)) == (0, 200)

    run("birthday_offers", at("2024-02-29 09:00"))
    assert (points_of(leapling), points_of(born_28th)) == (200, 200)

    run("birthday_offers", at("2024-03-01 09:00"))
    assert points_of(leapling) == 200


def test_29_february_birthday_is_kept_on_28_february_in_other_years(run, enrol):
    leapling = enrol(birth_date=date(2000, 2, 29))
    born_28th = enrol(birth_date=date(2000, 2, 28))

    run("birthday_offers", at("2025-02-27 09:00"))
    assert (points_of(leapling), points_of(born_28th)) == (0, 0)

    run("birthday_offers", at("2025-02-28 09:00"))
    assert (points_of(leapling), points_of(born_28th)) == (200, 200)

    # 1 March of a non-leap year is nobody's second birthday.
    run("birthday_offers", at("2025-03-01 09:00"))
    assert (points_of(leapling), points_of(born_28th)) == (200, 200)


def test_no_birthday_points_without_marketing_consent(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15), consent=False)

    assert run("birthday_offers", at("2025-06-15 09:00")).rows == 0
    assert points_of(member) == 0
    assert not Outbox.objects.filter(member=member).exists()


def test_no_birthday_points_on_a_blocked_card(run, enrol):
    member = enrol(birth_date=date(1990, 6, 15))
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)

    assert run("birthday_offers", at("2025-06-15 09:00")).rows == 0


def test_birthday_points_repay_debt_first(run, enrol, buy, stores):
    member = enrol(birth_date=date(1990, 6, 15))
    first = buy(member, "1000.00", at("2025-06-01 10:00"))  # earns 30
    buy(member, "100.00", at("2025-06-02 10:00"), redeem=30)  # spends them, earns 2
    refund_purchase(
        store=stores["MSK-01"],
        external_id=first["external_id"],
        refund_id="R-1",
        amount="1000.00",
        now=at("2025-06-03 10:00"),
    )
    member.refresh_from_db()
    assert member.points_debt == 28  # 30 reversed: 2 from the second lot, 28 owed

    run("birthday_offers", at("2025-06-15 09:00"))

    member.refresh_from_db()
    assert (member.points_debt, PointsLot.objects.get(batch__gt="").remaining) == (0, 172)
    assert member.points_balance == points_of(member)


def test_birthday_offers_interrupted_then_rerun_grant_each_member_once(run, enrol, interrupt_after):
    members = [enrol(birth_date=date(1990, 6, 15)) for _ in range(3)]
    undo = interrupt_after(1)
    with pytest.raises(RuntimeError):
        run_job("birthday_offers", as_of=at("2025-06-15 09:00"), batch_size=1)
    assert [points_of(m) for m in members] == [200, 0, 0]
    undo()

    rerun = run("birthday_offers", at("2025-06-15 09:00"), batch_size=1)

    assert rerun.rows == 2
    assert [points_of(m) for m in members] == [200, 200, 200]
    assert LedgerEntry.objects.filter(reason="birthday").count() == 3
    assert Outbox.objects.filter(purpose="birthday_offer").count() == 3

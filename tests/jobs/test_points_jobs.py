"""expire_points, expiry_reminders, activate_points: boundaries, re-runs and interruptions."""

from datetime import timedelta

import pytest

from loyalty.jobs.runner import run_job
from loyalty.models import JobRun, LedgerEntry, LotNotice, PointsLot, ProgramSettings
from members.models import Member
from messaging.models import Outbox
from tests.jobs.conftest import at


def balance(member):
    return Member.objects.get(pk=member.pk).points_balance


# --- expire_points ---------------------------------------------------------------------------


def test_points_expire_on_the_day_not_the_day_before(run, enrol, buy):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))  # 30 points, expire 2025-03-01 10:00

    assert run("expire_points", at("2025-02-28 10:00")).rows == 0
    assert run("expire_points", at("2025-03-01 09:59")).rows == 0
    assert balance(member) == 30

    expired = run("expire_points", at("2025-03-01 10:00"))

    assert (expired.rows, expired.counts) == (1, {"lots": 1, "members": 1})
    assert balance(member) == 0
    entry = LedgerEntry.objects.get(member=member, kind="expire")
    assert (entry.points, entry.job) == (-30, "expire_points")


def test_expire_points_run_twice_changes_nothing_the_second_time(run, enrol, buy):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))
    run("expire_points", at("2025-03-02 00:00"))

    again = run("expire_points", at("2025-03-02 00:00"))

    assert again.rows == 0
    assert LedgerEntry.objects.filter(member=member, kind="expire").count() == 1
    assert balance(member) == 0


def test_expire_points_interrupted_half_way_then_rerun_expires_each_lot_once(
    run, enrol, buy, monkeypatch
):
    from loyalty.engine import expiry

    members = [enrol() for _ in range(3)]
    for member in members:
        buy(member, "1000.00", at("2024-03-01 10:00"))
    real = expiry._expire_range
    calls = []

    def dying(*args, **kwargs):
        if len(calls) == 1:
            raise RuntimeError("worker killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(expiry, "_expire_range", dying)
    with pytest.raises(RuntimeError):
        run_job("expire_points", as_of=at("2025-03-02 00:00"), batch_size=1)
    assert JobRun.objects.get(job="expire_points").status == JobRun.Status.FAILED
    assert LedgerEntry.objects.filter(kind="expire").count() == 1
    monkeypatch.undo()

    rerun = run("expire_points", at("2025-03-02 00:00"), batch_size=1)

    assert rerun.rows == 2
    assert LedgerEntry.objects.filter(kind="expire").count() == 3
    assert [balance(member) for member in members] == [0, 0, 0]


# --- expiry_reminders ------------------------------------------------------------------------


def test_expiry_reminder_is_queued_14_days_ahead_not_15(run, enrol, buy):
    member = enrol(email="anna@example.com")
    buy(member, "1000.00", at("2024-03-01 10:00"))  # expires 2025-03-01 10:00

    assert run("expiry_reminders", at("2025-02-15 09:59")).rows == 0
    reminded = run("expiry_reminders", at("2025-02-15 10:00"))

    assert reminded.counts == {"lots": 1, "messages": 1}
    item = Outbox.objects.get(member=member)
    assert item.purpose == "expiry_reminder"
    assert item.context["points"] == 30


def test_expiry_reminder_is_sent_once_per_lot_whatever_the_reruns(run, enrol, buy):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))
    run("expiry_reminders", at("2025-02-20 10:00"))

    assert run("expiry_reminders", at("2025-02-20 10:00")).rows == 0
    assert run("expiry_reminders", at("2025-02-25 10:00")).rows == 0
    assert Outbox.objects.filter(member=member).count() == 1


def test_one_reminder_covers_every_lot_expiring_in_the_window(run, enrol, buy):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))
    buy(member, "2000.00", at("2024-03-05 10:00"))  # 60 more points, expire 5 March

    run("expiry_reminders", at("2025-02-20 10:00"))

    item = Outbox.objects.get(member=member)
    assert item.context["points"] == 90
    assert LotNotice.objects.filter(member=member, kind="expiry").count() == 2


def test_no_reminder_without_marketing_consent(run, enrol, buy):
    member = enrol(consent=False)
    buy(member, "1000.00", at("2024-03-01 10:00"))

    assert run("expiry_reminders", at("2025-02-20 10:00")).rows == 0
    assert not Outbox.objects.filter(member=member).exists()


def test_expiry_reminders_interrupted_then_rerun_remind_each_member_once(
    run, enrol, buy, interrupt_after
):
    members = [enrol() for _ in range(3)]
    for member in members:
        buy(member, "1000.00", at("2024-03-01 10:00"))
    undo = interrupt_after(1)
    with pytest.raises(RuntimeError):
        run_job("expiry_reminders", as_of=at("2025-02-20 10:00"), batch_size=1)
    assert Outbox.objects.count() == 1
    undo()

    run("expiry_reminders", at("2025-02-20 10:00"), batch_size=1)

    assert sorted(Outbox.objects.values_list("member_id", flat=True)) == [m.pk for m in members]


# --- activate_points -------------------------------------------------------------------------


@pytest.fixture
def pending_14_days(db, stores):
    ProgramSettings.objects.filter(pk=1).update(pending_days=14)


def test_pending_points_are_announced_when_their_window_ends(run, enrol, buy, pending_14_days):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))  # available from 15 March 10:00

    assert run("activate_points", at("2024-03-14 10:00")).rows == 0
    assert run("activate_points", at("2024-03-15 09:59")).rows == 0
    announced = run("activate_points", at("2024-03-15 10:00"))

    assert announced.counts == {"lots": 1, "messages": 1}
    item = Outbox.objects.get(member=member)
    assert (item.purpose, item.context["points"]) == ("points_available", 30)


def test_activate_points_twice_announces_once(run, enrol, buy, pending_14_days):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))
    run("activate_points", at("2024-03-15 11:00"))

    assert run("activate_points", at("2024-03-15 12:00")).rows == 0
    assert Outbox.objects.filter(member=member).count() == 1


def test_points_available_at_once_are_not_announced(run, enrol, buy):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))

    assert run("activate_points", at("2024-03-01 11:00")).rows == 0
    assert not Outbox.objects.filter(member=member).exists()


def test_activation_long_past_is_not_announced_on_a_first_run(run, enrol, buy, pending_14_days):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))

    assert run("activate_points", at("2024-04-15 10:00")).rows == 0


def test_activate_points_interrupted_then_rerun_announces_each_member_once(
    run, enrol, buy, pending_14_days, interrupt_after
):
    members = [enrol() for _ in range(3)]
    for member in members:
        buy(member, "1000.00", at("2024-03-01 10:00"))
    undo = interrupt_after(1)
    with pytest.raises(RuntimeError):
        run_job("activate_points", as_of=at("2024-03-15 11:00"), batch_size=1)
    undo()

    run("activate_points", at("2024-03-15 11:00"), batch_size=1)

    assert sorted(Outbox.objects.values_list("member_id", flat=True)) == [m.pk for m in members]
    assert PointsLot.objects.filter(available_from__lte=at("2024-03-15 11:00")).count() == 3
    assert at("2024-03-15 10:00") + timedelta(days=365) == PointsLot.objects.first().expires_at

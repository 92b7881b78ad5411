"""The refresh_analytics job on the hand-made program of conftest.py: every figure by hand."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics import queries
from analytics.jobs import refresh_analytics
from analytics.models import (
    CohortFigures,
    CohortSize,
    DailyFigures,
    PeriodFigures,
    SegmentFigures,
    Snapshot,
    StoreBuyer,
)
from loyalty.jobs.runner import run_job
from loyalty.models import JobRun, Store
from tests.analytics.conftest import AS_OF, msk

pytestmark = pytest.mark.django_db


def figures(stores=None, days=30):
    snapshot = queries.latest_snapshot()
    return queries.dashboard(snapshot, days, stores)


def test_the_services_gave_the_balances_the_figures_assume(program):
    assert {name: program.balance(name) for name in "ABCDE"} == {
        "A": 59,
        "B": 15,
        "C": 90,
        "D": 0,
        "E": 0,
    }


def test_snapshot_runs_through_the_day_before_the_run(refreshed):
    snapshot = Snapshot.objects.get()
    assert snapshot.as_of == AS_OF
    assert snapshot.through == date(2026, 3, 9)
    assert snapshot.point_value == Decimal("1.00")
    assert snapshot.currency == "RUB"


def test_members_revenue_and_checks_over_30_days(refreshed):
    result = figures()
    window = result["window"]
    assert (window.start, window.through) == (date(2026, 2, 8), date(2026, 3, 9))
    f = result["figures"]
    assert f["members"] == 5
    assert f["active_members"] == 3  # A, B and C bought since 02-08
    assert f["active_share"] == Decimal("60.0")
    assert f["new_members"] == 2  # C and D
    assert f["purchases"] == 6
    assert f["member_purchases"] == 4
    assert f["revenue"] == Decimal("7500.00")
    assert f["member_revenue"] == Decimal("6500.00")
    assert f["member_revenue_share"] == Decimal("86.7")
    assert f["member_average_check"] == Decimal("1625.00")
    assert f["anonymous_average_check"] == Decimal("500.00")
    assert f["member_frequency"] == Decimal("1.33")  # 4 receipts of 3 buyers
    assert f["revenue_before"] == Decimal("1800.00")  # 01-20 and 01-25
    assert f["revenue_change"] == Decimal("316.7")


def test_repeat_rate_and_churn(refreshed):
    f = figures()["figures"]
    assert f["repeat_rate"] == Decimal("33.3")  # A of A, B, C
    # A and E bought in the 30 days before; only A came back.
    assert f["previous_buyers"] == 2
    assert f["churn"] == Decimal("50.0")


def test_spending_before_and_after_enrolment(refreshed):
    f = figures()["figures"]
    # Only A enrolled 90 to 730 days before: 700 in the 90 days before, 1000 + 2000 after
    # (03-01 at noon is 90 days and 2 hours after enrolling).
    assert f["compared"] == 1
    assert f["spend_before"] == Decimal("700.00")
    assert f["spend_after"] == Decimal("3000.00")


def test_points_liability_breakage_and_redemption_rate(refreshed):
    f = figures()["figures"]
    assert f["points_outstanding"] == 164  # 59 + 15 + 90
    assert f["liability"] == Decimal("164.00")
    assert f["points_issued"] == 194  # 60 + 29 + 15 + 90 since 02-08
    assert f["points_redeemed"] == 30
    assert f["points_expired"] == 54  # 30 of A and 24 of E on 02-25
    assert f["redemption_rate"] == Decimal("15.5")
    assert f["breakage"] == Decimal("27.8")
    assert f["breakage_ever"] == Decimal("21.8")  # 54 of 248


def test_store_scope(refreshed, stores):
    msk01 = figures([stores["MSK-01"].pk])["figures"]
    assert msk01["members"] == 3  # A, B, D
    assert msk01["purchases"] == 5
    assert msk01["revenue"] == Decimal("4500.00")
    assert msk01["points_outstanding"] == 74
    spb = figures([stores["SPB-01"].pk])["figures"]
    assert (spb["members"], spb["revenue"], spb["points_outstanding"]) == (
        1,
        Decimal("3000.00"),
        90,
    )


def test_cohorts(refreshed):
    table = figures()["cohorts"]
    rows = {
        row["month"].strftime("%Y-%m"): (row["size"], [c["buyers"] for c in row["months"]])
        for row in table
    }
    assert rows == {
        "2026-03": (2, [1]),
        "2026-02": (1, [1, 0]),
        "2026-01": (1, [1, 0, 0]),
        "2025-12": (1, [0, 1, 1, 1]),  # the purchase before enrolling is not month -1
    }
    assert table[0]["months"][0]["share"] == Decimal("50")
    assert CohortSize.objects.count() == 5  # March: C at SPB-01, D at MSK-01
    assert CohortFigures.objects.count() == 6


def test_rfm_segments(refreshed, stores):
    segments = {row["segment"]: row["members"] for row in figures()["segments"]}
    # Recency ranks E < B < A < C, frequency: A (4 receipts) above the rest (1 each).
    assert segments == {"champions": 1, "promising": 1, "hibernating": 1, "lost": 1, "never": 1}
    by_store = {(row.store.code, row.segment) for row in SegmentFigures.objects.all()}
    assert by_store == {
        ("MSK-01", "champions"),
        ("SPB-01", "promising"),
        ("MSK-01", "hibernating"),
        ("MSK-02", "lost"),
        ("MSK-01", "never"),
    }
    never = SegmentFigures.objects.get(segment="never")
    assert (never.purchases, never.expected_purchases, never.alive) == (0, 0, 0)


def test_daily_rows_by_store(refreshed, stores):
    day = DailyFigures.objects.get(day=date(2026, 3, 5), store=stores["MSK-01"])
    assert (day.purchases, day.member_purchases, day.revenue) == (1, 0, Decimal("400.00"))
    spb = DailyFigures.objects.get(day=date(2026, 3, 5), store=stores["SPB-01"])
    assert (spb.purchases, spb.member_revenue, spb.points_earned) == (1, Decimal("3000.00"), 90)
    expired = DailyFigures.objects.filter(day=date(2026, 2, 25)).order_by("store__code")
    assert [(row.store.code, row.points_expired) for row in expired] == [
        ("MSK-01", 30),
        ("MSK-02", 24),
    ]
    enrolled = DailyFigures.objects.get(day=date(2026, 3, 3), store=stores["MSK-01"])
    assert enrolled.new_members == 1


def test_daily_figures_count_by_the_stores_local_day(program, stores):
    ekb = Store.objects.create(code="EKB-01", name="Екатеринбург", time_zone="Asia/Yekaterinburg")
    program.stores["EKB-01"] = ekb
    # 21:30 and 22:30 in Moscow on 03-05: 23:30 on 03-05 and 00:30 on 03-06 in Yekaterinburg.
    program.buy(None, "EKB-01", msk(3, 5, 21, 30), "100.00")
    program.buy(None, "EKB-01", msk(3, 5, 22, 30), "200.00")
    run_job("refresh_analytics", as_of=AS_OF)
    rows = DailyFigures.objects.filter(store=ekb).order_by("day")
    assert [(row.day, row.revenue) for row in rows] == [
        (date(2026, 3, 5), Decimal("100.00")),
        (date(2026, 3, 6), Decimal("200.00")),
    ]


def _rows(model):
    # What a run did (full or nightly, from which day, when it finished) is not a figure.
    skipped = ("id", "finished_at", "full", "first_day")
    fields = [f.name for f in model._meta.fields if f.name not in skipped]
    return sorted(model.objects.values_list(*fields), key=repr)


TABLES = [
    DailyFigures,
    PeriodFigures,
    CohortSize,
    CohortFigures,
    SegmentFigures,
    StoreBuyer,
    Snapshot,
]


def test_a_second_run_changes_nothing(refreshed):
    before = {model.__name__: _rows(model) for model in TABLES}
    run = run_job("refresh_analytics", as_of=AS_OF)
    assert run.status == JobRun.Status.DONE
    assert {model.__name__: _rows(model) for model in TABLES} == before


def test_as_of_boundary_at_local_midnight(program, stores):
    """A receipt at 23:59 counts on its day; one at 00:01 the next day is after the figures."""
    program.buy(None, "MSK-02", msk(3, 9, 23, 59), "111.00")
    program.buy(None, "MSK-02", msk(3, 10, 0, 1), "222.00")
    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-10T06:00:00+03:00")
    rows = DailyFigures.objects.filter(store=stores["MSK-02"], day__gte=date(2026, 3, 9))
    assert [(row.day, row.revenue) for row in rows] == [(date(2026, 3, 9), Decimal("111.00"))]
    f = figures()["figures"]
    assert f["revenue"] == Decimal("7611.00")
    # As of one minute past midnight the day is not over: the figures still end on 03-08.
    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-10T00:00:30+03:00")
    assert Snapshot.objects.get().through == date(2026, 3, 9)
    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-09T23:59:30+03:00")
    assert Snapshot.objects.get().through == date(2026, 3, 8)


def test_nightly_runs_give_the_rows_of_a_full_rebuild(program, stores):
    # The first run (full) on the morning of 03-06, then each night until 03-10.
    run_job("refresh_analytics", as_of=msk(3, 6, 6))
    assert Snapshot.objects.get().full is True
    for day in range(7, 11):
        run_job("refresh_analytics", as_of=msk(3, day, 3))
    assert Snapshot.objects.get().full is False
    nightly = {model.__name__: _rows(model) for model in TABLES[:-1]}
    refresh_analytics(as_of=msk(3, 10, 3), full=True, batch_size=7)
    assert Snapshot.objects.get().full is True
    assert {model.__name__: _rows(model) for model in TABLES[:-1]} == nightly


def test_runjob_full_rebuilds_every_day_and_refuses_jobs_without_one(program):
    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-09T06:00:00+03:00")
    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-10T06:00:00+03:00")
    assert Snapshot.objects.get().full is False

    call_command("runjob", "refresh_analytics", "--as-of", "2026-03-10T06:00:00+03:00", "--full")

    assert Snapshot.objects.get().full is True
    with pytest.raises(CommandError, match="--full does not apply to expire_points"):
        call_command("runjob", "expire_points", "--full")


def test_an_interrupted_full_rebuild_is_finished_by_the_next_run(program, monkeypatch):
    from analytics import jobs

    calls = []
    original = jobs._replace_days

    def fail_on_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(jobs, "_replace_days", fail_on_third)
    with pytest.raises(RuntimeError):
        refresh_analytics(as_of=AS_OF, batch_size=20)
    assert not Snapshot.objects.exists()  # the dashboard says "not built yet", not half-figures
    monkeypatch.setattr(jobs, "_replace_days", original)
    run = run_job("refresh_analytics", as_of=AS_OF)
    assert run.status == JobRun.Status.DONE
    assert Snapshot.objects.get().full is True
    assert figures()["figures"]["revenue"] == Decimal("7500.00")


def test_an_empty_program_makes_an_empty_snapshot(stores):
    run_job("refresh_analytics", as_of=AS_OF)
    f = figures()["figures"]
    assert (f["members"], f["revenue"], f["member_revenue_share"], f["churn"]) == (
        0,
        Decimal("0.00"),
        None,
        None,
    )
    assert DailyFigures.objects.count() == 0


def test_the_job_is_registered_and_on_the_nightly_schedule(settings):
    from loyalty.jobs import JOBS

    assert JOBS["refresh_analytics"].function is refresh_analytics
    entry = settings.CELERY_BEAT_SCHEDULE["refresh_analytics"]
    assert entry["args"] == ["refresh_analytics"]
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({2}, {30})


def test_refunds_count_on_the_day_they_are_recorded(program, stores, monkeypatch):
    from django.utils import timezone

    from loyalty.engine.purchases import refund_purchase

    monkeypatch.setattr(timezone, "now", lambda: msk(3, 7, 10))
    refund_purchase(
        store=stores["SPB-01"],
        external_id="R00007",  # C's 3000.00 of 03-05
        refund_id="F1",
        amount=Decimal("1000.00"),
        now=msk(3, 7, 10),
    )
    monkeypatch.undo()
    run_job("refresh_analytics", as_of=AS_OF)
    day = DailyFigures.objects.get(day=date(2026, 3, 7), store=stores["SPB-01"])
    assert (day.refunds, day.refunded, day.points_reversed) == (1, Decimal("1000.00"), 30)
    f = figures()["figures"]
    assert f["revenue"] == Decimal("6500.00")
    assert f["member_revenue"] == Decimal("5500.00")
    assert f["points_outstanding"] == 134


def test_history_loaded_after_a_run_is_counted_by_the_next_night(refreshed, stores):
    refreshed.buy(None, "MSK-02", msk(1, 15), "123.00", historical=True, earn=False)
    run_job("refresh_analytics", as_of=msk(3, 11, 3))
    assert Snapshot.objects.get().full is False
    day = DailyFigures.objects.get(day=date(2026, 1, 15), store=stores["MSK-02"])
    assert (day.purchases, day.revenue) == (1, Decimal("123.00"))

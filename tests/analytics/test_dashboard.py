"""The analytics page and its CSV exports, per role, on the hand-made program of conftest.py."""

import csv
import io
from decimal import Decimal

import pytest

from loyalty.jobs.runner import run_job
from tests.analytics.conftest import AS_OF, msk
from tests.helpers import session_queries

pytestmark = pytest.mark.django_db

URL = "/analytics/"


def test_before_the_first_run_the_page_says_so(client_as, marketer, program):
    response = client_as("marketer").get(URL)
    assert response.status_code == 200
    assert response.context["snapshot"] is None
    assert b'data-testid="analytics-empty"' in response.content
    assert b"<canvas" not in response.content


def test_marketer_sees_every_store(client_as, marketer, refreshed):
    response = client_as("marketer").get(URL, {"days": "30"})
    assert response.status_code == 200
    figures = response.context["figures"]
    assert (figures["members"], figures["revenue"], figures["liability"]) == (
        5,
        Decimal("7500.00"),
        Decimal("164.00"),
    )
    assert [store.code for store in response.context["stores"]] == [
        "MSK-01",
        "MSK-02",
        "PARTNER-01",
        "SPB-01",
    ]
    assert b'id="revenue-chart"' in response.content
    assert b'id="analytics-chart-data"' in response.content
    assert b"/surveys/" in response.content  # NPS trend lives on the NPS dashboard


def test_marketer_filters_by_store_and_period(client_as, marketer, refreshed):
    response = client_as("marketer").get(URL, {"days": "365", "store": "SPB-01"})
    figures = response.context["figures"]
    assert response.context["store"].code == "SPB-01"
    assert (figures["members"], figures["revenue"], figures["points_outstanding"]) == (
        1,
        Decimal("3000.00"),
        90,
    )
    assert response.context["window"].days == 365


def test_an_unknown_period_falls_back_to_30_days(client_as, marketer, refreshed):
    response = client_as("marketer").get(URL, {"days": "7"})
    assert response.context["days"] == 30


def test_store_manager_sees_only_their_store(client_as, manager, refreshed):
    client = client_as("manager")
    response = client.get(URL)
    assert [store.code for store in response.context["stores"]] == ["MSK-01"]
    figures = response.context["figures"]
    assert (figures["members"], figures["revenue"], figures["points_outstanding"]) == (
        3,
        Decimal("4500.00"),
        74,
    )
    assert {row["segment"] for row in response.context["segments"]} == {
        "champions",
        "hibernating",
        "never",
    }
    assert client.get(URL, {"store": "SPB-01"}).status_code == 404
    assert client.get("/analytics/export/figures.csv", {"store": "SPB-01"}).status_code == 404


def test_support_may_not_open_analytics(client_as, support, refreshed):
    assert client_as("support").get(URL).status_code == 403


def more_of_the_same(program):
    """As many members and receipts again, on other days, months and stores."""
    for number, (name, store, month) in enumerate(
        [("F", "MSK-02", 6), ("G", "SPB-01", 8), ("H", "MSK-01", 9), ("I", "MSK-02", 10)]
    ):
        program.enrol(name, f"+7916100000{number}", store, msk(month, 3, 10, year=2025))
        program.buy(name, store, msk(month, 4, year=2025), "300.00")
        program.buy(name, store, msk(2, 11 + number), "450.00")
    program.enrol("J", "+79161000009", "MSK-01", msk(1, 9))
    for day in (12, 14, 16, 18, 22, 24):
        program.buy(None, "SPB-01", msk(2, day), "250.00")


# Session (unless read from Redis), user, the user's two permission sets, the stores to choose
# from, the snapshot, the period's flows, member figures, the daily series, cohort sizes, cohort
# cells, segments, and the user's role for the header.
QUERIES = 12 + session_queries()


def test_the_page_makes_as_many_queries_whatever_the_data(
    client_as, marketer, manager, refreshed, django_assert_num_queries
):
    clients = {"marketer": client_as("marketer"), "manager": client_as("manager")}
    for client in clients.values():
        client.get(URL)  # sessions and permission caches warm, as for a returning user
    with django_assert_num_queries(QUERIES):
        clients["marketer"].get(URL, {"days": "90"})
    with django_assert_num_queries(QUERIES):
        clients["manager"].get(URL, {"days": "90", "store": "MSK-01"})
    more_of_the_same(refreshed)
    run_job("refresh_analytics", as_of=AS_OF)
    with django_assert_num_queries(QUERIES):
        response = clients["marketer"].get(URL, {"days": "90"})
    assert response.context["figures"]["members"] == 10
    with django_assert_num_queries(QUERIES):
        clients["manager"].get(URL, {"days": "90", "store": "MSK-01"})


def read_csv(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_of_the_figures(client_as, marketer, refreshed):
    response = client_as("marketer").get("/analytics/export/figures.csv", {"days": "30"})
    rows = dict(read_csv(response)[1:])
    assert rows["first_day"] == "2026-02-08"
    assert rows["last_day"] == "2026-03-09"
    assert rows["members"] == "5"
    assert rows["member_revenue_share"] == "86.7"
    assert rows["member_average_check"] == "1625.00"
    assert rows["churn"] == "50.0"
    assert rows["liability"] == "164.00"
    assert rows["breakage"] == "27.8"
    assert rows["redemption_rate"] == "15.5"
    assert 'filename="analytics-figures-all-30d.csv"' in response["Content-Disposition"]


def test_csv_of_days_cohorts_and_segments(client_as, manager, refreshed):
    client = client_as("manager")
    daily = read_csv(client.get("/analytics/export/daily.csv", {"days": "30"}))
    assert daily[0][:5] == ["day", "purchases", "member_purchases", "revenue", "member_revenue"]
    by_day = {row[0]: row for row in daily[1:]}
    assert by_day["2026-03-05"][1:4] == ["1", "0", "400.00"]  # MSK-01 only: not C's at SPB-01
    assert sorted(by_day) == [
        "2026-02-10",
        "2026-02-20",
        "2026-02-25",
        "2026-03-01",
        "2026-03-03",
        "2026-03-05",
        "2026-03-06",
    ]
    cohorts = read_csv(client.get("/analytics/export/cohorts.csv"))
    assert cohorts[0] == ["cohort", "members", "months_since", "buyers", "retention_pct", "revenue"]
    assert ["2025-12", "1", "2", "1", "100", "2000.00"] in cohorts
    segments = read_csv(client.get("/analytics/export/segments.csv"))
    assert [row[:2] for row in segments[1:]] == [
        ["champions", "1"],
        ["hibernating", "1"],
        ["never", "1"],
    ]


def test_csv_before_the_first_run_is_only_a_header(client_as, marketer, program):
    rows = read_csv(client_as("marketer").get("/analytics/export/segments.csv"))
    assert len(rows) == 1


def test_an_unknown_export_is_not_found(client_as, marketer):
    assert client_as("marketer").get("/analytics/export/members.csv").status_code == 404

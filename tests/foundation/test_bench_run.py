"""bench/run.py: the product's modules in the tree it is pointed at, the servers each case runs
on, the ratios, CPU per request and verdicts it reports; bench.lots's busiest members."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench.lots import POINTS, hold_open_lots
from bench.run import (
    Bench,
    aggregate,
    case_servers,
    cpu_ms_per_request,
    product_modules,
    ratio,
    ratios,
    table_rows,
    verdict,
)
from loyalty.models import LedgerEntry, PointsLot
from members.models import Member

REPO = Path(__file__).resolve().parents[2]


def test_product_modules_follow_the_tree_layout(tmp_path):
    assert product_modules(tmp_path) == ("loyalty.wsgi", "loyalty.settings")
    (tmp_path / "loyalty").mkdir()
    (tmp_path / "loyalty" / "wsgi.py").write_text("")
    assert product_modules(tmp_path) == ("loyalty.wsgi", "loyalty.settings")
    (tmp_path / "loyalty" / "project").mkdir()
    (tmp_path / "loyalty" / "project" / "wsgi.py").write_text("")
    assert product_modules(tmp_path) == ("loyalty.project.wsgi", "loyalty.project.settings")


def test_product_modules_given_outright_win(tmp_path):
    assert product_modules(tmp_path, "old.wsgi", "old.settings") == ("old.wsgi", "old.settings")
    assert product_modules(tmp_path, "old.wsgi") == ("old.wsgi", "loyalty.settings")


def bench_args(tmp_path, compare_dir=None):
    class Args:
        database_url = "postgres://postgres@127.0.0.1:5432/bench"
        product_dir = str(REPO)
        out = str(tmp_path / "results.json")
        product_module = None
        product_settings = None
        redis_url = "redis://127.0.0.1:6379/5"

    Args.compare_dir = compare_dir
    return Args()


def test_the_product_server_runs_the_found_modules(tmp_path):
    bench = Bench(bench_args(tmp_path))
    module, settings = product_modules(bench.product_dir)
    assert bench.apps["product"] == (f"{module}:application", settings, "/api/v1")
    assert bench.settings == settings
    assert set(bench.apps) == {"bare", "drf", "product"}


def test_a_compared_tree_is_a_fourth_server_with_its_own_modules_and_tree(tmp_path):
    before = tmp_path / "before"
    (before / "loyalty").mkdir(parents=True)
    (before / "loyalty" / "wsgi.py").write_text("")
    bench = Bench(bench_args(tmp_path, str(before)))
    assert set(bench.apps) == {"bare", "drf", "product", "before"}
    assert bench.apps["before"] == ("loyalty.wsgi:application", "loyalty.settings", "/api/v1")
    assert bench.trees["before"] == before
    assert bench.trees["product"] == bench.trees["drf"] == REPO
    assert bench.env("loyalty.settings", before)["PYTHONPATH"].split(":")[0] == str(before)


def test_before_runs_next_to_the_product_and_only_where_the_product_runs():
    assert case_servers(["bare", "product", "drf"], False) == ["bare", "product", "drf"]
    assert case_servers(["bare", "product", "drf"], True) == ["bare", "product", "before", "drf"]
    assert case_servers(["product"], True) == ["product", "before"]
    assert case_servers(["bare", "drf"], True) == ["bare", "drf"]


def test_ratios_of_every_server_to_both_floors_and_of_the_product_to_before():
    assert ratio(300, 400) == 0.75
    assert ratio(300, 0) is None
    assert ratio(None, 3) is None
    assert ratios({"bare": 1000, "drf": 500, "product": 400, "before": 200}) == {
        "product_vs_bare": 0.4,
        "product_vs_drf": 0.8,
        "product_vs_before": 2.0,
        "before_vs_bare": 0.2,
        "before_vs_drf": 0.4,
        "drf_vs_bare": 0.5,
    }
    assert ratios({"product": 400}) == {}
    assert ratios({"bare": 0, "product": 400}) == {}


def test_cpu_per_request_counts_the_server_and_postgresql_not_wrk():
    outcome = {"rps": 500.0, "cpu": {"server": 1.2, "postgres": 0.3, "wrk": 0.4, "other": 0.1}}
    assert cpu_ms_per_request(outcome) == 3.0
    assert cpu_ms_per_request({**outcome, "rps": 0}) is None


def outcome(rps, *, server=1.0, postgres=0.5, p99=10.0, errors=0):
    return {
        "rps": rps,
        "p50_ms": p99 / 2,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
        "errors": errors,
        "deadlocks": 0,
        "checkpoints": 0,
        "statuses": {"200": 1},
        "cpu": {"server": server, "postgres": postgres, "wrk": 0.2, "other": 0.1, "steal": 0.0},
    }


def test_aggregate_takes_the_medians_the_ratios_and_the_verdict():
    case = {
        "name": "lookup by card c8",
        "connections": 8,
        "targets": [("product_vs_drf", ">=", 0.9), ("p99_ms", "<", 25)],
    }
    entry = aggregate(
        case,
        {
            "bare": [outcome(1000), outcome(1200), outcome(900)],
            "drf": [outcome(500), outcome(400), outcome(600)],
            "product": [outcome(450, p99=20), outcome(500, p99=30), outcome(400, p99=22)],
        },
    )
    product = entry["servers"]["product"]
    assert (product["rps"], product["p99_ms"]) == (450, 22.0)
    assert product["cpu_ms_per_request"] == 3.333  # 1.5 cores over 450 requests a second
    assert entry["servers"]["bare"]["cpu_ms_per_request"] == 1.5
    assert entry["product_vs_bare"] == 0.45
    assert entry["product_vs_drf"] == 0.9
    assert entry["drf_vs_bare"] == 0.5
    assert entry["verdict"] == "met"


def test_verdict_names_every_target_missed_and_errors():
    case = {"targets": [("product_vs_drf", ">=", 0.9), ("p99_ms", "<", 25)]}
    entry = {"product_vs_drf": 0.8, "servers": {"product": {"p99_ms": 30.0, "errors": 2}}}
    assert verdict(case, entry) == (
        "MISSED: product_vs_drf 0.8 (target >= 0.9); p99_ms 30.0 (target < 25); "
        "2 errors, None deadlocks"
    )


def test_a_page_case_says_no_floor_and_a_floor_case_every_ratio():
    page = aggregate({"name": "member page c8", "connections": 8}, {"product": [outcome(100)]})
    (row,) = table_rows(page)
    assert row.count("no floor") == 2
    floors = aggregate(
        {"name": "lookup", "connections": 8},
        {"bare": [outcome(1000)], "drf": [outcome(500)], "product": [outcome(400)]},
    )
    rows = dict(zip(("bare", "drf", "product"), table_rows(floors), strict=True))
    assert rows["product"].split()[5:8] == ["0.40", "0.80", "-"]
    assert rows["drf"].split()[5:8] == ["0.50", "-", "-"]


@pytest.mark.django_db
def test_bench_lots_gives_each_member_exactly_that_many_open_lots_and_a_clean_ledger(pos, capsys):
    if connection.vendor != "postgresql":
        pytest.skip("bench.lots writes with generate_series (PostgreSQL)")
    buyer = pos.enrol()["card_number"]
    pos.buy(buyer, "1000.00")  # holds an open lot already: not picked
    fresh = [pos.enrol()["card_number"] for _ in range(3)]
    Member.objects.filter(card_number=fresh[2]).update(status=Member.Status.BLOCKED)

    cards = hold_open_lots(7, 5)

    assert cards == fresh[:2]
    now = timezone.now()
    for card in cards:
        member = Member.objects.get(card_number=card)
        open_lots = PointsLot.objects.filter(
            member=member, remaining__gt=0, available_from__lte=now, expires_at__gt=now
        )
        assert open_lots.count() == 7
        assert member.points_balance == 7 * POINTS
        assert LedgerEntry.objects.filter(member=member, kind="bonus").count() == 7
    assert PointsLot.objects.filter(member__card_number=buyer).count() == 1
    assert Member.objects.get(card_number=fresh[2]).points_balance == 0
    assert hold_open_lots(7, 5) == []  # nobody left without lots
    call_command("check_ledger")
    assert "consistent" in capsys.readouterr().out

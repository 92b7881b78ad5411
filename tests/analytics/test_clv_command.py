"""`manage.py clv --until DATE`: the purchase history brought in through the product's own CSV
imports (members, then historical purchases) and fitted as Fader, Hardie and Lee (2005) did.

CDNOW's sample (data/cdnow_sample.txt: 2,357 customers who first bought in the first quarter of
1997, 6,919 purchase lines to June 1998; the file Fader and Hardie publish and BTYD and lifetimes
ship) calibrated to 1997-09-30 gives the paper's r = 0.243, α = 4.414, a = 0.793, b = 2.426.
"""

import csv
import json
from datetime import date, datetime, timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from analytics import clv
from members.models import Member

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def import_history(tmp_path, purchases):
    """``purchases``: (customer id, ISO day, amount) rows; one member per customer id."""
    customers = sorted({customer for customer, _day, _amount in purchases})
    members = write_csv(
        tmp_path / "members.csv",
        ["phone", "external_ref", "store"],
        [(f"+7999{number:07d}", customer, "MSK-01") for number, customer in enumerate(customers)],
    )
    receipts = write_csv(
        tmp_path / "purchases.csv",
        ["external_id", "store", "occurred_at", "amount", "external_ref"],
        [
            (f"R-{line}", "MSK-01", day, amount, customer)
            for line, (customer, day, amount) in enumerate(purchases)
        ],
    )
    call_command("import_members", members, stdout=StringIO())
    call_command("import_purchases", receipts, stdout=StringIO())


def clv_json(until):
    out = StringIO()
    call_command("clv", until=until, json=True, stdout=out)
    return json.loads(out.getvalue())


def test_cdnow_through_the_imports_reproduces_fader_hardie_lee_2005(stores, tmp_path):
    purchases = []
    for line in CDNOW.read_text().splitlines():
        customer, _id, day, _quantity, amount = line.split()
        purchases.append((customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", amount))
    assert len(purchases) == 6919
    import_history(tmp_path, purchases)  # 8 lines of 0.00 are receipts too
    assert Member.objects.filter(external_ref__isnull=False).count() == 2357

    fit = clv_json("1997-09-30")

    assert fit["customers"] == 2357
    assert fit["until"] == "1997-09-30"
    paper = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in paper.items():
        assert abs(fit["bgnbd"][name] - value) <= 0.01 * value, (name, fit["bgnbd"])
    # Fader & Hardie (2013), the Gamma-Gamma note, on the same calibration period: p = 6.25,
    # q = 3.74, γ = 15.44 (946 customers with repeat purchases).
    assert fit["repeat_customers"] == 946
    gamma = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in gamma.items():
        assert abs(fit["gamma_gamma"][name] - value) <= 0.01 * value, (name, fit["gamma_gamma"])


def test_days_not_receipts_and_the_calibration_window(stores, tmp_path):
    """Customer A: two receipts on 01-01 (one purchase), 01-15, and 03-01 after DATE. Customer B:
    one receipt on 01-29. DATE 02-26: A has x = 1, t_x = 2 weeks, T = 8 weeks and a repeat
    spend of 30.00; B x = 0, T = 4 weeks. The fit sees exactly these (checked against
    ``fit_bgnbd`` on the same numbers, with enough copies of A and B to be fitted)."""
    purchases = []
    for copy in range(15):
        purchases += [
            (f"A{copy}", "2026-01-01", "10.00"),
            (f"A{copy}", "2026-01-01", "5.00"),
            (f"A{copy}", "2026-01-15", "30.00"),
            (f"A{copy}", "2026-03-01", "99.00"),
            (f"B{copy}", "2026-01-29", "20.00"),
        ]
    import_history(tmp_path, purchases)
    fit = clv_json("2026-02-26")
    assert fit["customers"] == 30
    assert fit["repeat_customers"] == 15
    x = np.array([1.0] * 15 + [0.0] * 15)
    t_x = np.array([2.0] * 15 + [0.0] * 15)
    T = np.array([8.0] * 15 + [4.0] * 15)
    expected = clv.fit_bgnbd(x, t_x, T)
    assert fit["bgnbd"]["log_likelihood"] == pytest.approx(expected["log_likelihood"], rel=1e-9)


def test_simulated_customers_come_back_out_of_the_history(stores, tmp_path):
    """Customers drawn from BG/NBD with known parameters, written as dated receipts (whole days)
    and imported: the command fits what a direct fit on the same (x, t_x, T) finds, and lands
    near the parameters that made them."""
    rng = np.random.default_rng(7)
    x, t_x, T = clv.simulate_bgnbd((0.5, 6.0, 0.7, 2.5), rng.uniform(30, 60, 1500), rng)
    until = date(2026, 6, 30)
    purchases, expected = [], []
    for number in range(len(x)):
        observed, repeat = int(T[number] * 7), int(x[number])
        last = min(max(int(t_x[number] * 7), repeat), observed)
        if repeat > last:
            continue  # more repeat purchases than days: not a history of whole days
        first = until - timedelta(days=observed)
        days = [*rng.choice(np.arange(1, last), repeat - 1, replace=False), last] if repeat else []
        for offset in [0, *days]:
            day = (first + timedelta(days=int(offset))).isoformat()
            purchases.append((f"S{number}", day, "40.00"))
        expected.append((repeat, last / 7 if repeat else 0, observed / 7))
    import_history(tmp_path, purchases)

    fit = clv_json(until.isoformat())

    assert fit["customers"] == len(expected)
    direct = clv.fit_bgnbd(
        *(np.array(column, dtype=float) for column in zip(*expected, strict=True))
    )
    assert fit["bgnbd"]["log_likelihood"] == pytest.approx(direct["log_likelihood"], rel=1e-9)
    for name, truth in zip(("r", "alpha", "a", "b"), (0.5, 6.0, 0.7, 2.5), strict=True):
        assert fit["bgnbd"][name] == pytest.approx(direct[name], rel=1e-4)
        assert fit["bgnbd"][name] == pytest.approx(truth, rel=0.5)


def test_a_bad_date_is_refused(db):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("clv", until="30.09.1997")


def test_too_few_customers_fit_nothing(stores):
    fit = clv_json("2026-01-01")
    assert fit["customers"] == 0
    assert fit["bgnbd"] is None
    assert fit["gamma_gamma"] is None
    assert datetime.fromisoformat(fit["until"]).date() == date(2026, 1, 1)

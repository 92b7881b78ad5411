"""The one home for money rounding: half-up to the kopeck, Decimal only."""

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.db import connection

from loyalty.engine.money import CENT, MONEY_SQL, from_cents, money, money_str, round_to
from loyalty.engine.tiers import SPEND


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.005"), Decimal("0.01")),
        (Decimal("2.675"), Decimal("2.68")),
        (Decimal("1.004999"), Decimal("1.00")),
        (Decimal("-0.005"), Decimal("-0.01")),
        (Decimal("-2.675"), Decimal("-2.68")),
        (Decimal("-1.004"), Decimal("-1.00")),
        ("12.345", Decimal("12.35")),
        ("7", Decimal("7.00")),
        (5, Decimal("5.00")),
        (-3, Decimal("-3.00")),
        (0, Decimal("0.00")),
    ],
)
def test_money_rounds_half_up_to_the_kopeck(value, expected):
    result = money(value)
    assert result == expected
    assert str(result) == str(expected)


def test_a_float_from_the_database_is_read_by_its_shortest_form():
    # 0.1 + 0.2 is 0.30000000000000004 as a float; 2.675 is 2.67499999999999982... (the old
    # analytics _money, round(float(v), 2), gave 2.67).
    assert money(0.1 + 0.2) == Decimal("0.30")
    assert money(2.675) == Decimal("2.68")
    assert money(1.005) == Decimal("1.01")
    assert money(-1.005) == Decimal("-1.01")
    assert money(1e10 + 0.015) == Decimal("10000000000.02")


def test_money_str_is_the_api_form():
    assert money_str(Decimal("12.3")) == "12.30"
    assert money_str("0.005") == "0.01"
    assert money_str(100) == "100.00"
    assert Decimal("0.01") == CENT


def test_half_even_only_when_asked_for():
    assert money(Decimal("0.125"), rounding=ROUND_HALF_EVEN) == Decimal("0.12")
    assert money(Decimal("0.135"), rounding=ROUND_HALF_EVEN) == Decimal("0.14")
    assert money(Decimal("0.125")) == Decimal("0.13")


def test_round_to_other_places():
    assert round_to(Decimal("12.45"), 1) == Decimal("12.5")
    assert round_to(Decimal("-12.5"), 0) == Decimal("-13")
    assert round_to(2.5, 0, rounding=ROUND_HALF_EVEN) == Decimal("2")
    assert str(round_to(Decimal("1"), 3)) == "1.000"


def test_from_cents():
    assert from_cents(1234) == Decimal("12.34")
    assert str(from_cents(0)) == "0.00"
    assert str(from_cents(100)) == "1.00"
    assert str(from_cents(7)) == "0.07"
    assert str(from_cents(-5)) == "-0.05"


def test_tier_spend_rounds_in_sql_the_same_way():
    assert MONEY_SQL.format("x") == "ROUND(x, 2)"
    assert SPEND == "ROUND(COALESCE(SUM({amount}), 0), 2)"


@pytest.mark.django_db
@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="PostgreSQL's float8 and numeric; SQLite has no numeric",
)
def test_a_float_sum_from_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 0.1::float8 + 0.2::float8, 2.675::float8, ROUND(2.675::numeric, 2)")
        float_sum, float_half, sql_rounded = cursor.fetchone()
    assert isinstance(float_sum, float)
    assert money(float_sum) == Decimal("0.30")
    assert money(float_half) == Decimal("2.68")
    assert money(float_half) == sql_rounded


def test_the_display_filter_rounds_instead_of_cutting():
    from django.utils import translation

    from loyalty.templatetags.loyalty_tags import money as money_filter

    with translation.override("en"):
        # number_format alone cuts the digits: 1.005 showed as 1.00 and -2.675 as -2.67.
        assert money_filter(Decimal("1.005"), "RUB") == "₽1.01"
        assert money_filter(Decimal("-2.675"), "RUB") == "₽-2.68"
        assert money_filter(0.1 + 0.2, "RUB") == "₽0.30"
        assert money_filter("n/a", "RUB") == "n/a"

"""Members against comparable non-members, coarsened exact matching worked out by hand.

As of 2026-12-01 noon with 180-day periods: the pre-period runs from 2025-12-06 noon, the outcome
period from 2026-06-04 noon. Every unit spent 1000 once in the pre-period (one band each).

    M1  member since 01-10, MSK-01, first bought in January   outcome 3000
    M2  member since 01-12, MSK-01, January                    outcome 1000
    M3  member since 02-01, SPB-01, February                   outcome 5000  (no one to match)
    N1  joins 12-05 (after the moment), MSK-01, January         outcome 1500
    N2  joins 12-06, MSK-01, January                            outcome 0
    X   joined 07-01, inside the outcome period: neither

Raw gap 3000 - 750 = 2250; matched (MSK-01, January): 2000 - 750 = 1250 with weight 2, so
1250 of 2250 survives (55.6%), and 2 of 3 members are matched.
"""

import pytest
from django.urls import reverse

from analytics.matching import coarsened_exact_matching
from tests.analytics.conftest import Program, msk

AS_OF = msk(12, 1)


@pytest.fixture
def program(stores):
    program = Program(stores)
    people = [
        ("M1", "MSK-01", msk(1, 10, 10), [(msk(1, 15), "1000.00"), (msk(8, 1), "3000.00")]),
        ("M2", "MSK-01", msk(1, 12, 10), [(msk(1, 20), "1000.00"), (msk(8, 2), "1000.00")]),
        ("M3", "SPB-01", msk(2, 1, 10), [(msk(2, 3), "1000.00"), (msk(9, 1), "5000.00")]),
        ("N1", "MSK-01", msk(12, 5, 10), [(msk(1, 18), "1000.00"), (msk(8, 3), "1500.00")]),
        ("N2", "MSK-01", msk(12, 6, 10), [(msk(1, 25), "1000.00")]),
        ("X", "MSK-01", msk(7, 1, 10), [(msk(1, 26), "1000.00"), (msk(8, 4), "900.00")]),
    ]
    for number, (name, store, joined, purchases) in enumerate(people):
        program.enrol(name, f"+7916000003{number}", store, joined)
        for when, amount in purchases:
            before = when < joined
            program.buy(name, store, when, amount, historical=before, earn=not before)
    return program


def test_the_matched_gap_by_hand(program):
    result = coarsened_exact_matching(AS_OF)
    assert (result.members, result.non_members) == (3, 2)
    assert result.raw_gap == pytest.approx(2250)
    assert result.matched_gap == pytest.approx(1250)
    assert result.surviving == pytest.approx(1250 / 2250)
    assert (result.matched_members, result.strata) == (2, 1)
    assert result.share_matched == pytest.approx(2 / 3)
    assert result.low <= result.matched_gap <= result.high


def test_no_non_members_no_number(program):
    """As of 12-07 noon N1 and N2 have joined: nobody is left to compare with."""
    result = coarsened_exact_matching(msk(12, 7))
    assert result.non_members == 0
    assert result.matched_gap is None and result.raw_gap is None


def test_the_page_shows_the_matching(program, client_as, admin_user_):
    response = client_as("admin").get(reverse("analytics:effect"))
    assert response.status_code == 200
    assert 'data-testid="cem-members"' in response.content.decode()


def test_the_figures_as_csv(program, client_as, admin_user_):
    """The export holds every figure the page shows (as of now, so only names are checked)."""
    response = client_as("admin").get(reverse("analytics:effect-export"))
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "method,figure,value"
    names = {tuple(line.split(",")[:2]) for line in lines[1:]}
    assert {("did", "members_used"), ("did", "spend_effect"), ("matching", "matched_gap"),
            ("matching", "share_matched")} <= names  # fmt: skip

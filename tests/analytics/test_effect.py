"""Before and after enrolment as a difference in differences, worked out by hand.

W = 13 weeks. T1 and T2 join in the week of Monday 2026-04-06; C1 and C2 join after both windows
(from 2026-07-06 on) and bought in the same "before" weeks, so they are the comparison.

    T1  joins 04-06  before: 03-02 1000            after: 04-06 1500, 05-04 1500  change +2000, +1
    T2  joins 04-08  before: 02-10 500             after: 04-20 500               change 0, 0
    C1  joins 09-01  03-05 200 (before)            04-15 600 (after)              change +400, 0
    C2  joins 10-01  03-20 300 (before)            nothing                        change -300, -1
    C3  joins 06-01  bought 03-01 (a Sunday): outside its own "before" weeks (from 03-02)
    D   joins 05-01  never bought before joining

Comparison: +50 spend, -0.5 purchases. Effect: spend (1950 + -50) / 2 = 950, purchases
(1.5 + 0.5) / 2 = 1. As of 2026-12-01, members with both windows complete: T1, T2, C1, C3, D;
used T1 and T2; left out 3 with no purchase in the weeks before joining.
"""

import pytest
from django.urls import reverse

from analytics.effect import difference_in_differences
from tests.analytics.conftest import Program, msk

AS_OF = msk(12, 1)


@pytest.fixture
def program(stores):
    program = Program(stores)
    for name, phone, when in [
        ("T1", "+79160000021", msk(4, 6, 10)),
        ("T2", "+79160000022", msk(4, 8, 10)),
        ("C1", "+79160000023", msk(9, 1, 10)),
        ("C2", "+79160000024", msk(10, 1, 10)),
        ("C3", "+79160000025", msk(6, 1, 10)),
        ("D", "+79160000026", msk(5, 1, 10)),
    ]:
        program.enrol(name, phone, "MSK-01", when)
    history = {"historical": True, "earn": False}
    program.buy("T1", "MSK-01", msk(3, 2), "1000.00", **history)
    program.buy("T1", "MSK-01", msk(4, 6), "1500.00")
    program.buy("T1", "MSK-01", msk(5, 4), "1500.00")
    program.buy("T2", "MSK-01", msk(2, 10), "500.00", **history)
    program.buy("T2", "MSK-01", msk(4, 20), "500.00")
    program.buy("C1", "MSK-01", msk(3, 5), "200.00", **history)
    program.buy("C1", "MSK-01", msk(4, 15), "600.00", **history)
    program.buy("C2", "MSK-01", msk(3, 20), "300.00", **history)
    program.buy("C3", "MSK-01", msk(3, 1), "100.00", **history)
    program.buy("D", "MSK-01", msk(5, 2), "100.00")
    return program


def test_the_effect_against_comparable_buyers_by_hand(program):
    result = difference_in_differences(AS_OF)
    assert (result.used, result.comparison) == (2, 2)
    assert result.left_out == {"no_purchase_before": 3, "no_comparison": 0}
    spend, purchases = result.spend, result.purchases
    assert (spend.members_before, spend.members_after) == (750, 1750)
    assert (spend.comparison_before, spend.comparison_after) == (250, 300)
    assert spend.effect == pytest.approx(950)
    assert purchases.effect == pytest.approx(1.0)
    # The interval holds the estimate, and the fixed seed gives the same interval twice.
    assert spend.low <= spend.effect <= spend.high
    again = difference_in_differences(AS_OF)
    assert (again.spend.low, again.spend.high) == (spend.low, spend.high)


def test_without_comparison_buyers_there_is_no_number(program):
    """With 26-week windows T1's and T2's "after" runs to 10-05: C1 (09-01) and C2 (10-01) were
    members by then, so nobody compares with them; C3 (joined 06-01, its 03-01 purchase now
    inside its "before" weeks) has nobody either. No number, and three members say why."""
    result = difference_in_differences(AS_OF, weeks=26)
    assert result.used == 0
    assert result.left_out["no_comparison"] == 3
    assert result.spend is None and result.purchases is None


def test_the_page_says_who_was_used_and_why_others_were_left_out(program, client_as, admin_user_):
    response = client_as("admin").get(reverse("analytics:effect"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="did-used">2<' in body
    assert 'data-testid="did-no-before"' in body


def test_the_nightly_job_works_the_effects_out_and_the_page_reads_them(
    program, client_as, admin_user_, monkeypatch
):
    """After refresh_analytics the figures come from the snapshot: the page does not read the
    receipts again (the live functions would fail here)."""
    from analytics import effect, matching
    from loyalty.jobs.runner import run_job

    run_job("refresh_analytics", as_of=AS_OF)

    def fail(*args, **kwargs):
        raise AssertionError("worked out again")

    monkeypatch.setattr(effect, "difference_in_differences", fail)
    monkeypatch.setattr(matching, "coarsened_exact_matching", fail)
    body = client_as("admin").get(reverse("analytics:effect")).content.decode()
    assert 'data-testid="did-used">2<' in body
    assert 'data-testid="did-spend">' in body
    assert client_as("admin").get(reverse("analytics:roi")).status_code == 200

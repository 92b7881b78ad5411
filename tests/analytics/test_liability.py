"""Points liability: the monthly roll-forward ties to the ledger (each month's closing is the sum
of the members' balances at that instant, read off the members while the history is made), the
lines hold exactly what happened, and the IFRS 15 view defers and recognises to the kopeck.

History (Moscow time, points expire 30 days after they are earned, 3% earned):
    January   A buys 1000 (+30) on 01-10, B buys 500 (+15) on 01-20; support adds 10 to B.
    February  the expiry job (02-10) takes A's 30; A buys 2000 (+60) on 02-15; B buys 1000
              spending 25 (+29 on 975) on 02-16; A's 2000 is half refunded on 02-20 (-30).
    March     the expiry job (03-25) takes A's last 30 and B's 29.
Closings: January 55, February 59, March 0.
"""

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics import liability
from loyalty import roles
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.refunds import refund_purchase
from loyalty.jobs.runner import run_job
from loyalty.models import LedgerEntry, ProgramSettings
from members.models import Member
from tests.analytics.conftest import MSK, Program, msk

MONTH_ENDS = {"2026-01": msk(2, 1, 0), "2026-02": msk(3, 1, 0), "2026-03": msk(4, 1, 0)}


def balances_now():
    return sum(Member.objects.values_list("points_balance", flat=True))


@pytest.fixture
def history(stores, make_staff):
    settings = ProgramSettings.load()
    settings.expiry_days = 30
    settings.save()
    support = make_staff("sup", roles.SUPPORT)
    program = Program(stores)
    closings = {}
    program.enrol("A", "+79160000011", "MSK-01", msk(1, 5, 10))
    program.buy("A", "MSK-01", msk(1, 10), "1000.00")
    program.enrol("B", "+79160000012", "MSK-01", msk(1, 12, 10))
    program.buy("B", "MSK-01", msk(1, 20), "500.00")
    adjust_points(
        member_id=program.members["B"].pk, points=10, reason="goodwill", staff=support,
        now=msk(1, 25),
    )  # fmt: skip
    closings["2026-01"] = balances_now()
    run_job("expire_points", as_of=msk(2, 10, 3))
    purchase = program.buy("A", "MSK-01", msk(2, 15), "2000.00")
    program.buy("B", "MSK-01", msk(2, 16), "1000.00", redeem_points=25)
    refund_purchase(
        store=stores["MSK-01"], external_id=purchase.body["external_id"], refund_id="F-1",
        amount=Decimal("1000.00"), now=msk(2, 20),
    )  # fmt: skip
    closings["2026-02"] = balances_now()
    run_job("expire_points", as_of=msk(3, 25, 3))
    closings["2026-03"] = balances_now()
    return closings


def test_every_closing_is_the_sum_of_balances_at_the_month_end(history):
    months = liability.roll_forward(
        datetime(2026, 1, 1).date(), datetime(2026, 3, 1).date(), Decimal("1.00")
    )
    assert history == {"2026-01": 55, "2026-02": 59, "2026-03": 0}
    assert {f"{row.month:%Y-%m}": row.closing for row in months} == history
    for row in months:
        # ... and the ledger up to that instant says the same, entry by entry.
        end = MONTH_ENDS[f"{row.month:%Y-%m}"]
        assert row.closing == sum(
            LedgerEntry.objects.filter(created_at__lt=end).values_list("points", flat=True)
        )
        assert row.closing == row.opening + sum(row.lines.values())


def test_each_line_holds_what_happened(history):
    january, february, march = liability.roll_forward(
        datetime(2026, 1, 1).date(), datetime(2026, 3, 1).date(), Decimal("0.50")
    )
    changed = lambda row: {line: points for line, points in row.lines.items() if points}  # noqa: E731
    assert (january.opening, changed(january)) == (0, {"purchases": 45, "adjusted": 10})
    assert (february.opening, changed(february)) == (
        55,
        {"purchases": 89, "redeemed": -25, "reversed": -30, "expired": -30},
    )
    assert (march.opening, changed(march)) == (59, {"expired": -59})
    assert february.issued == 89
    assert february.money["closing"] == Decimal("29.50")
    assert february.money["redeemed"] == Decimal("-12.50")


def test_a_later_window_opens_with_the_earlier_months(history):
    (march,) = liability.roll_forward(
        datetime(2026, 3, 1).date(), datetime(2026, 3, 1).date(), Decimal("1.00")
    )
    assert (march.opening, march.closing) == (59, 0)
    assert (march.earned_to_date, march.redeemed_to_date) == (134, 25)


def test_breakage_from_the_lots_whose_expiry_has_passed(history):
    """As of 04-01 every lot's expiry has passed: A's 30 (expired), B's 15 (spent), B's 10
    (spent), A's 60 (30 reversed, 30 expired), B's 29 (expired): 89 of 144 points expired."""
    breakage = liability.expected_breakage(msk(4, 1, 0))
    assert (breakage.expired, breakage.points, breakage.lots) == (89, 144, 5)
    assert breakage.rate == Decimal("0.618056")
    # On 02-12 only A's first lot had reached its expiry.
    early = liability.expected_breakage(msk(2, 12, 0))
    assert (early.expired, early.points, early.rate) == (30, 30, Decimal("1.000000"))
    assert liability.expected_breakage(msk(1, 15)).rate is None


def test_ifrs15_defers_at_the_stand_alone_price_and_recognises_on_redemption(history):
    months = liability.roll_forward(
        datetime(2026, 1, 1).date(), datetime(2026, 3, 1).date(), Decimal("1.00")
    )
    breakage = liability.Breakage(Decimal("0.2"), 0, 0, 0)
    january, february, march = liability.ifrs15(months, Decimal("1.00"), breakage)
    # January: 30 + 15 earned with purchases at 0.80 a point; the staff's 10 is not revenue.
    assert january == {
        "month": datetime(2026, 1, 1).date(), "earned": 45, "redeemed": 0,
        "opening": Decimal("0.00"), "deferred": Decimal("36.00"),
        "recognised": Decimal("0.00"), "breakage": Decimal("0.00"), "closing": Decimal("36.00"),
    }  # fmt: skip
    # February: 60 + 29 earned (71.20), 25 redeemed: 20.00 recognised plus 5.00 of breakage.
    assert (february["deferred"], february["recognised"], february["breakage"]) == (
        Decimal("71.20"), Decimal("20.00"), Decimal("5.00"),
    )  # fmt: skip
    assert february["closing"] == Decimal("82.20")
    assert march["opening"] == february["closing"] == march["closing"]
    # The closing is value × ((1 − breakage) × earned − redeemed) to date.
    assert march["closing"] == Decimal("1.00") * (Decimal("0.8") * 134 - 25)


def test_the_page_and_its_csv(history, client_as, admin_user_):
    client = client_as("admin")
    url = reverse("analytics:liability")
    with_months = {"first": "2026-01", "last": "2026-03"}
    response = client.get(url, with_months)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-month="2026-02"' in body
    assert [row.closing for row in response.context["report"]["months"]] == [55, 59, 0]
    export = client.get(reverse("analytics:liability-export", args=["rollforward"]), with_months)
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(row["month"], row["opening"], row["closing"]) for row in rows] == [
        ("2026-01", "0", "55"), ("2026-02", "55", "59"), ("2026-03", "59", "0"),
    ]  # fmt: skip
    assert rows[1]["expired"] == "-30"
    assert rows[1]["closing_money"] == "59.00"
    ifrs = client.get(reverse("analytics:liability-export", args=["ifrs15"]), with_months)
    lines = b"".join(ifrs.streaming_content).decode().splitlines()
    assert lines[0].startswith("month,opening,earned,deferred,redeemed,recognised,breakage")
    assert len(lines) == 4


def test_a_bad_month_range_is_a_form_error_in_the_users_language(stores, client_as, admin_user_):
    client = client_as("admin")
    response = client.get(reverse("analytics:liability"), {"first": "2026-05", "last": "2026-01"})
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "Последний месяц не может быть раньше первого." in response.content.decode()
    response = client.get(reverse("analytics:liability"), {"first": "май", "last": "2026-01"})
    assert response.context["form"].errors["first"]
    export = client.get(
        reverse("analytics:liability-export", args=["rollforward"]), {"first": "x", "last": "y"}
    )
    assert export.status_code == 400


def test_queries_do_not_grow_with_the_months(history, client_as, admin_user_,
                                              django_assert_max_num_queries):  # fmt: skip
    client = client_as("admin")
    client.get(reverse("analytics:liability"))  # sessions, program settings warmed
    with django_assert_max_num_queries(14):
        client.get(reverse("analytics:liability"), {"first": "2016-01", "last": "2026-03"})


def test_months_are_calendar_months_in_moscow(history):
    """An entry at 23:30 Moscow time on 01-31 (20:30 UTC) is January's."""
    member = Member.objects.get(phone="+79160000011")
    adjust_points(
        member_id=member.pk, points=5, reason="late", staff=None,
        now=datetime(2026, 1, 31, 23, 30, tzinfo=MSK),
    )  # fmt: skip
    january, february = liability.roll_forward(
        datetime(2026, 1, 1).date(), datetime(2026, 2, 1).date(), Decimal("1.00")
    )
    assert january.lines["adjusted"] == 15
    assert february.opening == 60

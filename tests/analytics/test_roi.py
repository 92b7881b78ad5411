"""Program ROI and KPI targets, worked out by hand.

March 2026, MSK-01: A (member since 01-10) buys 1000 on 03-02 and 2000 on 03-09 spending 30
points (30.00 RUB); B (member since 02-01) buys 500 on 03-05. Two SMS and one e-mail were sent to
A. With an extra spend of 2.00 RUB per member and day, a 25% margin, SMS at 3.50, e-mail at
0.10 and 100.00 a month fixed: extra revenue 2 x 31 x 2 members = 124.00, margin 31.00; cost
30.00 + 7.10 + 100.00 = 137.10; ROI (31.00 - 137.10) / 137.10 = -77.4%.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics import roi
from analytics.models import KpiTarget, ProgramEconomics
from loyalty.models import Coupon, Purchase, Tier
from messaging.models import Message
from tests.analytics.conftest import Program, msk


@pytest.fixture
def program(stores):
    program = Program(stores)
    program.enrol("A", "+79160000041", "MSK-01", msk(1, 10, 10))
    program.enrol("B", "+79160000042", "MSK-01", msk(2, 1, 10))
    program.buy("A", "MSK-01", msk(1, 15), "1000.00")  # 30 points to spend in March
    program.buy("A", "MSK-01", msk(3, 2), "1000.00")
    program.buy("A", "MSK-01", msk(3, 9), "2000.00", redeem_points=30)
    program.buy("B", "MSK-01", msk(3, 5), "500.00")
    for channel, day in [("sms", 3), ("sms", 4), ("email", 5)]:
        Message.objects.create(
            member=program.members["A"], purpose="campaign", channel=channel, status="sent",
            sent_at=msk(3, day), created_at=msk(3, day),
        )  # fmt: skip
    ProgramEconomics.objects.update_or_create(
        pk=1,
        defaults={
            "gross_margin_pct": Decimal("25"), "sms_price": Decimal("3.50"),
            "email_price": Decimal("0.10"), "fixed_monthly_cost": Decimal("100.00"),
        },
    )  # fmt: skip
    return program


LIFT = roi.Uplift(Decimal("2.00"), "matching", 360.0, 180)


def test_roi_of_a_month_by_hand(program):
    (march,) = roi.roi_by_month(date(2026, 3, 1), date(2026, 3, 1), lift=LIFT)
    assert march.members == 2
    assert (march.incremental_revenue, march.incremental_margin) == (
        Decimal("124.00"), Decimal("31.00"),
    )  # fmt: skip
    assert march.points == Decimal("30.00")
    assert march.messages == {"sms": 2, "email": 1}
    assert march.messages_cost == Decimal("7.10")
    assert march.cost == Decimal("137.10")
    assert march.roi_pct == Decimal("-77.4")


def test_a_store_has_no_fixed_cost_and_no_roi_without_a_lift(program, stores):
    (march,) = roi.roi_by_month(
        date(2026, 3, 1), date(2026, 3, 1), store_id=stores["SPB-01"].pk, lift=LIFT
    )
    assert (march.members, march.cost, march.roi_pct) == (0, 0, None)
    (none,) = roi.roi_by_month(date(2026, 3, 1), date(2026, 3, 1), lift=roi.Uplift(None, ""))
    assert none.incremental_margin is None and none.roi_pct is None
    assert none.cost == Decimal("137.10")


def test_actuals_beside_targets(program):
    KpiTarget.objects.create(month=date(2026, 3, 1), active_members=3, repeat_rate_pct=40)
    months = roi.roi_by_month(date(2026, 2, 1), date(2026, 3, 1), lift=LIFT)
    february, march = roi.kpis(date(2026, 2, 1), date(2026, 3, 1), months)
    assert (february.active_members, february.target) == (0, None)
    assert (march.active_members, march.repeat_rate_pct) == (2, Decimal("50.0"))
    assert march.target.active_members == 3
    assert march.roi_pct == Decimal("-77.4")


def test_the_page_saves_targets_and_economics(program, client_as, admin_user_):
    client = client_as("admin")
    url = reverse("analytics:roi")
    response = client.get(url, {"first": "2026-03", "last": "2026-03"})
    assert response.status_code == 200
    assert 'data-month="2026-03"' in response.content.decode()
    response = client.post(
        url,
        {"target-month": "2026-03", "target-active_members": "5", "target-nps": "30",
         "target-repeat_rate_pct": "", "target-roi_pct": ""},
    )  # fmt: skip
    assert response.status_code == 302
    client.post(url, {"target-month": "2026-03", "target-active_members": "6"})
    target = KpiTarget.objects.get()
    assert (target.month, target.active_members, target.nps) == (date(2026, 3, 1), 6, None)
    response = client.post(
        url,
        {"economics-gross_margin_pct": "120", "economics-email_price": "0",
         "economics-sms_price": "1", "economics-fixed_monthly_cost": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.context["economics_form"].errors["gross_margin_pct"]
    assert ProgramEconomics.load().gross_margin_pct == Decimal("25.00")
    export = client.get(reverse("analytics:roi-export"), {"first": "2026-03", "last": "2026-03"})
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].startswith("month,members,incremental_revenue")
    assert lines[1].split(",")[7:10] == ["1", "2", "7.10"]


def test_the_queries_do_not_grow_with_the_months(program, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        rows = roi.roi_by_month(date(2016, 1, 1), date(2026, 12, 1), lift=LIFT)
    assert len(rows) == 132
    assert [row.members for row in rows if row.month >= date(2026, 1, 1)][:3] == [1, 2, 2]


def test_a_receipt_with_a_tier_discount_and_a_coupon_splits_its_discount(program):
    """Bronze gives 5% off. In April A buys 1,000.50 with a 100.00 coupon: the receipt's
    discount of 150.03 is 50.03 the tier's (5% of 1,000.50, rounded half up) and 100.00 the
    coupon's; B buys 200.00: 10.00 the tier's."""
    bronze = Tier.objects.get(code="bronze")
    bronze.discount_percent = Decimal("5")
    bronze.save()
    Coupon.objects.create(code="HUNDRED", kind="fixed", value=Decimal("100"))
    program.buy("A", "MSK-01", msk(4, 2), "1000.50", coupon_code="HUNDRED")
    program.buy("B", "MSK-01", msk(4, 3), "200.00")

    (april,) = roi.roi_by_month(date(2026, 4, 1), date(2026, 4, 1), lift=LIFT)

    assert Purchase.objects.get(coupon_code="HUNDRED").discount_amount == Decimal("150.03")
    assert april.tier_discounts == Decimal("60.03")
    assert april.coupon_discounts == Decimal("100.00")

"""Program ROI per month and store, and the marketer's KPI targets against actuals (SPEC 8.1).

ROI = (incremental margin − program cost) ÷ program cost. The incremental spend per member and
day comes from the matched comparison (``analytics.matching``: the matched gap over its period)
or, without one, from the difference in differences (``analytics.effect``); times the members
enrolled by the month's end (at the store) and the month's days, times the gross margin, it is
the incremental margin. The cost: points redeemed at their value (receipts' ``redeemed_value``),
tier discounts (each receipt's tier percentage of its amount, ``tier_discount_of_purchase``),
coupon discounts (the rest of its discount), messages sent at the price of their channel
(counted at the member's home store), and the fixed monthly cost (in the program's total only:
it belongs to no store). Every input is returned beside the result.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from analytics import effect, matching
from analytics.liability import month_moment, months_between, next_month
from analytics.models import KpiTarget, ProgramEconomics
from analytics.sql import rows_over
from loyalty.engine.money import money, roi_pct, round_to
from loyalty.engine.pricing import tier_discount_of_purchase
from loyalty.models import Purchase
from members.models import Member
from messaging.models import Message
from surveys.models import SurveyResponse

ZERO = Decimal("0.00")


@dataclass
class Uplift:
    """Incremental spend per member and day, and where it comes from."""

    per_day: Decimal | None
    source: str  # "matching", "did" or "" (none)
    gap: float | None = None
    days: int = 0


def uplift(did, cem):
    """From the matched comparison when it has a number, else from the difference in
    differences, else none."""
    if cem.matched_gap is not None:
        return Uplift(
            Decimal(str(cem.matched_gap)) / cem.days, "matching", cem.matched_gap, cem.days
        )
    if did.spend is not None:
        days = did.weeks * 7
        return Uplift(Decimal(str(did.spend.effect)) / days, "did", did.spend.effect, days)
    return Uplift(None, "")


@dataclass
class MonthRoi:
    month: object
    members: int = 0
    incremental_revenue: Decimal | None = None
    incremental_margin: Decimal | None = None
    points: Decimal = ZERO
    tier_discounts: Decimal = ZERO
    coupon_discounts: Decimal = ZERO
    messages: dict = field(default_factory=dict)  # channel -> count
    messages_cost: Decimal = ZERO
    fixed: Decimal = ZERO

    @property
    def cost(self):
        return (
            self.points
            + self.tier_discounts
            + self.coupon_discounts
            + self.messages_cost
            + self.fixed
        )

    @property
    def roi_pct(self):
        return roi_pct(self.incremental_margin, self.cost)


def _month_of(value):
    zone = timezone.get_current_timezone()
    return timezone.localtime(value, zone).date() if hasattr(value, "hour") else value


def roi_by_month(first, last, *, store_id=None, lift=None):
    """One ``MonthRoi`` per month; ``store_id`` None is the whole program (with the fixed cost)."""
    months = months_between(first, last)
    start, end = month_moment(months[0]), month_moment(next_month(months[-1]))
    economics = ProgramEconomics.load()
    if lift is None:
        lift = uplift(effect.difference_in_differences(), matching.coarsened_exact_matching())
    zone = timezone.get_current_timezone()
    rows = {month: MonthRoi(month) for month in months}
    receipts = Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    messages = Message.objects.filter(
        status=Message.Status.SENT, sent_at__gte=start, sent_at__lt=end
    )
    if store_id is not None:
        receipts = receipts.filter(store_id=store_id)
        messages = messages.filter(member__enrolled_store_id=store_id)
    for row in (
        receipts.annotate(month=TruncMonth("occurred_at", tzinfo=zone))
        .values("month")
        .annotate(
            points=Sum("redeemed_value"),
            discounts=Sum("discount_amount"),
            tier=Sum(tier_discount_of_purchase()),
        )
        .order_by()
    ):
        target = rows[_month_of(row["month"])]
        target.points = row["points"] or ZERO
        target.tier_discounts = money(row["tier"] or ZERO)
        target.coupon_discounts = (row["discounts"] or ZERO) - target.tier_discounts
    for row in (
        messages.annotate(month=TruncMonth("sent_at", tzinfo=zone))
        .values("month", "channel")
        .annotate(sent=Count("id"))
        .order_by()
    ):
        target = rows[_month_of(row["month"])]
        target.messages[row["channel"]] = row["sent"]
        target.messages_cost += money(economics.message_price(row["channel"]) * row["sent"])
    enrolled = Member.objects.exclude(status=Member.Status.MERGED)
    if store_id is not None:
        enrolled = enrolled.filter(enrolled_store_id=store_id)
    # Members enrolled by each month's end: one query for all the months, not one a month.
    counts = enrolled.aggregate(
        **{
            f"m{number}": Count("id", filter=Q(enrolled_at__lt=month_moment(next_month(month))))
            for number, month in enumerate(months)
        }
    )
    for number, (month, row) in enumerate(rows.items()):
        row.members = counts[f"m{number}"]
        if store_id is None:
            row.fixed = economics.fixed_monthly_cost
        if lift.per_day is not None:
            days = (next_month(month) - month).days
            row.incremental_revenue = money(lift.per_day * days * row.members)
            row.incremental_margin = money(economics.margin_on(row.incremental_revenue))
    return [rows[month] for month in months]


@dataclass
class Actual:
    month: object
    active_members: int = 0
    repeat_rate_pct: Decimal | None = None
    nps: int | None = None
    roi_pct: Decimal | None = None
    target: KpiTarget | None = None


def kpis(first, last, roi_rows):
    """Actuals per month (active members, repeat rate, NPS, ROI) beside the month's targets."""
    months = months_between(first, last)
    start, end = month_moment(months[0]), month_moment(next_month(months[-1]))
    zone = timezone.get_current_timezone()
    actual = {month: Actual(month) for month in months}
    per_member = (
        Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end, member__isnull=False)
        .annotate(month=TruncMonth("occurred_at", tzinfo=zone))
        .values("month", "member_id")
        .annotate(receipts=Count("id"))
        .order_by()
    )
    grouped = rows_over(
        per_member,
        "SELECT month, COUNT(*), SUM(CASE WHEN receipts >= 2 THEN 1 ELSE 0 END) "
        "FROM {rows} buyers GROUP BY month",
    )
    for month, active, repeat in grouped:
        row = actual[_parse_month(month)]
        row.active_members = active
        row.repeat_rate_pct = round_to(Decimal(repeat or 0) * 100 / active, 1)
    for row in (
        SurveyResponse.objects.filter(
            answered_at__gte=start, answered_at__lt=end, score__isnull=False
        )
        .annotate(month=TruncMonth("answered_at", tzinfo=zone))
        .values("month")
        .annotate(
            answers=Count("id"),
            promoters=Count("id", filter=Q(score__gte=9)),
            detractors=Count("id", filter=Q(score__lte=6)),
        )
        .order_by()
    ):
        actual[_month_of(row["month"])].nps = round(
            (row["promoters"] - row["detractors"]) * 100 / row["answers"]
        )
    for row in roi_rows:
        actual[row.month].roi_pct = row.roi_pct
    for target in KpiTarget.objects.filter(month__in=months):
        actual[target.month].target = target
    return [actual[month] for month in months]


def _parse_month(value):
    """A truncated month read through a plain cursor: local time already, as a naive datetime
    (PostgreSQL) or text (SQLite)."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        return _month_of(value)
    return date.fromisoformat(str(value)[:10])

"""What the analytics dashboard and its CSV exports read: only the small tables the
``refresh_analytics`` job builds (analytics.models), a constant number of queries whatever the
number of members or receipts.

``stores`` is a list of store ids to keep, or None for everything (the marketer's and the
administrator's view, which also counts rows with no store). Ratios are Decimals rounded for
display, or None when there is nothing to divide by.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import Q, Sum

from analytics.models import (
    PERIODS,
    CohortFigures,
    CohortSize,
    DailyFigures,
    PeriodFigures,
    Segment,
    SegmentFigures,
    Snapshot,
)
from loyalty.engine.money import money, round_to

DEFAULT_DAYS = 30
ZERO = Decimal("0.00")
# Cohort table: the latest enrolment months shown, each with as many months after.
COHORT_ROWS = 12

DAILY_FIELDS = [
    "purchases",
    "member_purchases",
    "revenue",
    "member_revenue",
    "refunds",
    "refunded",
    "member_refunded",
    "new_members",
    "points_earned",
    "points_bonus",
    "points_reversed",
    "points_redeemed",
    "points_returned",
    "points_expired",
    "points_adjusted",
    "promoters",
    "passives",
    "detractors",
]
MONEY_FIELDS = ["revenue", "member_revenue", "refunded", "member_refunded"]
PERIOD_FIELDS = [
    "members",
    "buyers",
    "purchases",
    "revenue",
    "repeat_buyers",
    "previous_buyers",
    "retained",
    "compared",
    "compared_with_history",
    "spend_before",
    "spend_after",
    "points_outstanding",
]
SEGMENT_FIELDS = [
    "members",
    "purchases",
    "revenue",
    "recency_days",
    "expected_purchases",
    "expected_value",
    "alive",
]


def period_days(value):
    """The period asked for in the URL, one of PERIODS (anything else: the default)."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return days if days in PERIODS else DEFAULT_DAYS


def latest_snapshot():
    return Snapshot.objects.filter(pk=1).first()


def ratio(part, whole, places=1, scale=100):
    """part ÷ whole × scale, rounded; None when whole is zero."""
    if not whole:
        return None
    return round_to(Decimal(part) * scale / Decimal(whole), places)


def _in_stores(queryset, stores):
    return queryset if stores is None else queryset.filter(store_id__in=stores)


@dataclass
class Window:
    """The days a period covers: [start, through], and the same length before it."""

    days: int
    through: object
    start: object
    previous_start: object

    @classmethod
    def ending(cls, through, days):
        start = through - timedelta(days=days - 1)
        return cls(days, through, start, start - timedelta(days=days))


def daily_totals(window, stores):
    """Sums of the daily flows over the period, the period before and all days so far (one
    query)."""
    rows = _in_stores(DailyFigures.objects.filter(day__lte=window.through), stores)
    now = Q(day__gte=window.start)
    before = Q(day__gte=window.previous_start, day__lt=window.start)
    # Only the sums the page shows: every flow of the period, revenue of the period before,
    # points since the start (for breakage to date).
    wanted = {
        "now": (DAILY_FIELDS, now),
        "before": (["revenue", "refunded"], before),
        "all": (["points_earned", "points_bonus", "points_expired"], None),
    }
    sums = {
        f"{part}_{name}": Sum(name, filter=condition)
        for part, (names, condition) in wanted.items()
        for name in names
    }
    values = rows.aggregate(**sums)
    return {
        part: {name: values[f"{part}_{name}"] or 0 for name in names}
        for part, (names, _condition) in wanted.items()
    }


def daily_series(window, stores):
    """One row per day of the period (days with nothing are absent), oldest first."""
    rows = _in_stores(
        DailyFigures.objects.filter(day__gte=window.start, day__lte=window.through), stores
    )
    series = list(
        rows.values("day").order_by("day").annotate(**{name: Sum(name) for name in DAILY_FIELDS})
    )
    for row in series:
        for name in MONEY_FIELDS:
            row[name] = money(row[name] or 0)
    return series


def period_totals(days, stores):
    values = _in_stores(PeriodFigures.objects.filter(days=days), stores).aggregate(
        **{name: Sum(name) for name in PERIOD_FIELDS}
    )
    return {name: values[name] or 0 for name in PERIOD_FIELDS}


def cohorts(stores):
    """The latest COHORT_ROWS enrolment months: size and, for each month since enrolment, the
    members who bought in it (two queries)."""
    sizes = (
        _in_stores(CohortSize.objects.all(), stores)
        .values("cohort")
        .order_by("-cohort")
        .annotate(members=Sum("members"))[:COHORT_ROWS]
    )
    sizes = {row["cohort"]: row["members"] for row in sizes}
    if not sizes:
        return []
    cells = (
        _in_stores(CohortFigures.objects.filter(cohort__in=list(sizes)), stores)
        .values("cohort", "months_since")
        .order_by()
        .annotate(buyers=Sum("buyers"), revenue=Sum("revenue"))
    )
    by_cohort = {}
    for cell in cells:
        by_cohort.setdefault(cell["cohort"], {})[cell["months_since"]] = cell
    table = []
    latest = max(sizes)
    for cohort in sorted(sizes, reverse=True):
        size = sizes[cohort]
        months = []
        for since in range(latest - cohort + 1):
            cell = by_cohort.get(cohort, {}).get(since)
            buyers = cell["buyers"] if cell else 0
            months.append(
                {
                    "months_since": since,
                    "buyers": buyers,
                    "revenue": money(cell["revenue"] if cell else 0),
                    "share": ratio(buyers, size, places=0),
                }
            )
        table.append(
            {"cohort": cohort, "month": cohort_month(cohort), "size": size, "months": months}
        )
    return table


def cohort_month(cohort):
    """The first day of an enrolment month numbered year × 12 + month − 1."""
    return date(cohort // 12, cohort % 12 + 1, 1)


def segments(stores):
    """RFM segments, in the order of Segment, with their predicted next 12 months."""
    rows = (
        _in_stores(SegmentFigures.objects.all(), stores)
        .values("segment")
        .order_by()
        .annotate(**{name: Sum(name) for name in SEGMENT_FIELDS})
    )
    found = {row["segment"]: row for row in rows}
    total = sum(row["members"] for row in found.values())
    result = []
    for segment in Segment:
        row = found.get(segment.value)
        if row is None or not row["members"]:
            continue
        members = row["members"]
        bought = segment != Segment.NEVER
        result.append(
            {
                "segment": segment.value,
                "label": segment.label,
                "members": members,
                "share": ratio(members, total),
                "purchases": row["purchases"],
                "revenue": money(row["revenue"] or 0),
                "recency_days": (
                    round_to(row["recency_days"] / members, 0, rounding=ROUND_HALF_EVEN)
                    if bought
                    else None
                ),
                "expected_purchases": round_to(
                    row["expected_purchases"] / members, 2, rounding=ROUND_HALF_EVEN
                ),
                "expected_value": money(Decimal(row["expected_value"]) / members),
                "expected_value_total": money(row["expected_value"] or 0),
                "alive": ratio(row["alive"], members) if bought else None,
            }
        )
    return result


def dashboard(snapshot, days, stores):
    """Every figure of the dashboard for a period and a scope (7 queries)."""
    window = Window.ending(snapshot.through, days)
    flows = daily_totals(window, stores)
    now, before, ever = flows["now"], flows["before"], flows["all"]
    period = period_totals(days, stores)
    net_revenue = now["revenue"] - now["refunded"]
    member_net = now["member_revenue"] - now["member_refunded"]
    anonymous_purchases = now["purchases"] - now["member_purchases"]
    anonymous_revenue = now["revenue"] - now["member_revenue"]
    issued = now["points_earned"] + now["points_bonus"]
    issued_ever = ever["points_earned"] + ever["points_bonus"]
    answers = now["promoters"] + now["passives"] + now["detractors"]
    outstanding = period["points_outstanding"]
    compared = period["compared"]
    figures = {
        "members": period["members"],
        "active_members": period["buyers"],
        "active_share": ratio(period["buyers"], period["members"]),
        "new_members": now["new_members"],
        "revenue": money(net_revenue),
        "revenue_before": money(before["revenue"] - before["refunded"]),
        "revenue_change": _change(net_revenue, before["revenue"] - before["refunded"]),
        "member_revenue": money(member_net),
        "member_revenue_share": ratio(member_net, net_revenue),
        "purchases": now["purchases"],
        "member_purchases": now["member_purchases"],
        "anonymous_purchases": anonymous_purchases,
        "member_average_check": _per(now["member_revenue"], now["member_purchases"]),
        "anonymous_average_check": _per(anonymous_revenue, anonymous_purchases),
        "member_frequency": ratio(period["purchases"], period["buyers"], places=2, scale=1),
        "repeat_rate": ratio(period["repeat_buyers"], period["buyers"]),
        "churn": (
            None
            if not period["previous_buyers"]
            else 100 - ratio(period["retained"], period["previous_buyers"])
        ),
        "previous_buyers": period["previous_buyers"],
        "compared": compared,
        "spend_before": _per(period["spend_before"], compared),
        "spend_after": _per(period["spend_after"], compared),
        "points_outstanding": outstanding,
        "liability": money(outstanding * snapshot.point_value),
        "points_issued": issued,
        "points_redeemed": now["points_redeemed"],
        "points_expired": now["points_expired"],
        "redemption_rate": ratio(now["points_redeemed"], issued),
        "breakage": ratio(now["points_expired"], issued),
        "breakage_ever": ratio(ever["points_expired"], issued_ever),
        "nps": (
            None
            if not answers
            else round_to(Decimal((now["promoters"] - now["detractors"]) * 100) / answers, 0)
        ),
        "nps_answers": answers,
    }
    return {
        "window": window,
        "figures": figures,
        "series": daily_series(window, stores),
        "cohorts": cohorts(stores),
        "segments": segments(stores),
    }


def _per(total, count):
    return money(Decimal(total) / count) if count else None


def _change(now, before):
    """Change against the period before, in percent (None without a base)."""
    return ratio(Decimal(now) - Decimal(before), before) if before else None

"""Does joining change what a customer spends? A difference in differences (SPEC 8.1).

Members who bought before they joined (imported history, or purchases matched to them by card,
phone or ``external_ref``) are compared in two equal windows, the W weeks before their enrolment
week and the W weeks from it, with buyers who were not yet members during both windows and
bought in the same "before" weeks (the same selection, so neither group is picked for a good
"before"). Per member: (after − before) − the comparison buyers' mean (after − before) in the same
calendar weeks. The effect is the mean over members, for spend and for purchase count, with a 95%
interval from a bootstrap over members and, within each enrolment week, over comparison buyers
(fixed seed). Weeks are calendar weeks (Monday) in the project's time zone; W = 13 weeks is the
SPEC's 90 days rounded to whole weeks so that both groups share the same calendar windows.

Only members and buyers with a purchase before enrolment are read (one grouped query per
(customer, week)), so the work is small even with millions of receipts: most members join at
their first purchase and have no "before".
"""

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from django.db.models import Count, Exists, F, OuterRef, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from loyalty.models import Purchase
from members.models import Member

WINDOW_WEEKS = 13
RESAMPLES = 1000
SEED = 2026
EPOCH = date(2000, 1, 3)  # a Monday: week numbers count from it


def week_number(moment):
    day = timezone.localtime(moment).date() if isinstance(moment, datetime) else moment
    return (day - EPOCH).days // 7


def week_start(number):
    return EPOCH + timedelta(weeks=number)


@dataclass
class Figure:
    members_before: float
    members_after: float
    comparison_before: float
    comparison_after: float
    effect: float
    low: float
    high: float


@dataclass
class DiD:
    weeks: int
    used: int = 0
    comparison: int = 0
    left_out: dict = field(default_factory=dict)
    spend: Figure | None = None
    purchases: Figure | None = None


def _weekly_history(as_of):
    """{customer: {week: (spend, purchases)}} and {customer: enrolment week}, for customers
    who bought before their enrolment, up to W weeks after it."""
    zone = timezone.get_current_timezone()
    before_joining = Purchase.objects.filter(
        member=OuterRef("member"), occurred_at__lt=OuterRef("member__enrolled_at")
    )
    rows = (
        Purchase.objects.filter(
            member__isnull=False,
            occurred_at__lt=F("member__enrolled_at") + timedelta(weeks=WINDOW_WEEKS),
            occurred_at__lte=as_of,
        )
        .filter(Exists(before_joining))
        .annotate(week=TruncWeek("occurred_at", tzinfo=zone))
        .values("member_id", "week", "member__enrolled_at")
        .annotate(spend=Sum("amount"), purchases=Count("id"))
        .order_by()
    )
    history, enrolled = {}, {}
    for row in rows:
        customer = row["member_id"]
        history.setdefault(customer, {})[week_number(row["week"])] = (
            float(row["spend"]),
            row["purchases"],
        )
        enrolled[customer] = week_number(row["member__enrolled_at"])
    return history, enrolled


def _window(series, start, end):
    spend = purchases = 0.0
    for week, (week_spend, week_purchases) in series.items():
        if start <= week < end:
            spend += week_spend
            purchases += week_purchases
    return spend, purchases


CHUNK = 50  # resamples drawn at once: memory stays at CHUNK x rows


def _chunks():
    return [range(start, min(start + CHUNK, RESAMPLES)) for start in range(0, RESAMPLES, CHUNK)]


def _boot_means(rows, rng):
    """(RESAMPLES, columns): the column means of ``rows`` resampled with replacement."""
    return np.concatenate(
        [rows[rng.integers(0, len(rows), (len(chunk), len(rows)))].mean(axis=1)
         for chunk in _chunks()]
    )  # fmt: skip


def difference_in_differences(as_of=None, weeks=WINDOW_WEEKS):
    as_of = as_of or timezone.now()
    last_complete = week_number(as_of)  # the week of as_of is not complete: windows end before
    history, enrolled = _weekly_history(as_of)
    result = DiD(weeks=weeks)
    complete = Member.objects.filter(
        enrolled_at__lt=timezone.make_aware(
            datetime.combine(week_start(last_complete - weeks + 1), datetime.min.time())
        )
    ).count()
    # Members with both windows complete and a purchase in the "before" weeks.
    treated = []
    for customer, series in history.items():
        week = enrolled[customer]
        if week + weeks > last_complete:
            continue
        before = _window(series, week - weeks, week)
        if not before[1]:
            continue  # bought before joining, but not in the W weeks before
        treated.append((customer, week, before, _window(series, week, week + weeks)))
    # Comparison buyers per enrolment week: not members until after both windows, and bought
    # in the same "before" weeks.
    cohorts = {}
    for week in sorted({week for _c, week, _b, _a in treated}):
        changes = []
        for customer, series in history.items():
            if enrolled[customer] < week + weeks:
                continue
            before = _window(series, week - weeks, week)
            if before[1]:
                after = _window(series, week, week + weeks)
                changes.append((*before, *after))
        if changes:
            cohorts[week] = np.array(changes)
    used = [row for row in treated if row[1] in cohorts]
    result.used = len(used)
    result.comparison = len(
        {
            customer
            for customer, series in history.items()
            for week in cohorts
            if enrolled[customer] >= week + weeks and _window(series, week - weeks, week)[1]
        }
    )
    result.left_out = {
        "no_purchase_before": complete - len(treated),
        "no_comparison": len(treated) - len(used),
    }
    if not used:
        return result
    members = np.array([[*before, *after] for _c, _w, before, after in used])
    weeks_of = np.array([week for _c, week, _b, _a in used])
    index = {week: number for number, week in enumerate(sorted(cohorts))}  # sorted = weeks_sorted
    cohort_of = np.array([index[week] for week in weeks_of])
    means = np.array([cohorts[week].mean(axis=0) for week in sorted(cohorts)])
    rng = np.random.default_rng(SEED)
    weeks_sorted = sorted(cohorts)
    boot_means = np.stack([_boot_means(cohorts[week], rng) for week in weeks_sorted], axis=1)
    picks = [rng.integers(0, len(used), (len(chunk), len(used))) for chunk in _chunks()]
    for name, (b, a) in (("spend", (0, 2)), ("purchases", (1, 3))):
        change = members[:, a] - members[:, b]
        control = means[cohort_of, a] - means[cohort_of, b]
        boot_control = boot_means[:, :, a] - boot_means[:, :, b]  # (resamples, cohorts)
        boot = np.concatenate(
            [
                change[pick].mean(axis=1)
                - np.take_along_axis(boot_control[chunk], cohort_of[pick], axis=1).mean(axis=1)
                for chunk, pick in zip(_chunks(), picks, strict=True)
            ]
        )
        low, high = np.percentile(boot, [2.5, 97.5])
        figure = Figure(
            members_before=float(members[:, b].mean()),
            members_after=float(members[:, a].mean()),
            comparison_before=float(means[cohort_of, b].mean()),
            comparison_after=float(means[cohort_of, a].mean()),
            effect=float((change - control).mean()),
            low=float(low),
            high=float(high),
        )
        setattr(result, name, figure)
    return result


def to_json(result):
    return asdict(result)


def from_json(data):
    figures = {name: Figure(**data[name]) if data.get(name) else None
               for name in ("spend", "purchases")}  # fmt: skip
    return DiD(**{**data, **figures})

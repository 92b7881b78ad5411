"""Points liability as an accountant needs it (SPEC 8.1): a monthly roll-forward that ties to the
ledger, and the IFRS 15 view of the revenue deferred for points.

The roll-forward reads the ledger itself, not the nightly aggregates: its closing must equal the
sum of the members' balances at the end of every month exactly, the current month included.
Months are calendar months in the project's time zone. One query sums every entry before the
first month by line, one sums the months by line; each line of the report is one class of entry
(``LINE`` is that rule's one home).

IFRS 15 (a material right granted with a purchase): a point earned with a purchase defers its
stand-alone selling price, the point value × (1 − expected breakage); a point redeemed recognises
that price, and breakage is recognised in proportion to redemptions (value × breakage per point
redeemed), so each redeemed point recognises its full value. The contract liability is then
value × ((1 − breakage) × points earned − points redeemed). Points granted without a sale
(campaigns, birthdays, referrals, staff) are a marketing cost, not deferred revenue: they are in
the roll-forward, not in the IFRS 15 table. Expected breakage comes from the program's own
history: points expired ÷ points of the lots whose expiry fell in the 24 months before the
moment (their fate is final: each point was used or expired).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Case, CharField, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine.money import money, round_to
from loyalty.models import EntryKind, LedgerEntry, PointsLot

# (line, label) in the order the roll-forward prints them.
LINES = [
    ("purchases", _("Earned with purchases")),
    ("campaigns", _("Campaign bonuses")),
    ("birthdays", _("Birthday bonuses")),
    ("referrals", _("Referral bonuses")),
    ("memberships", _("Membership bonuses")),
    ("other_bonuses", _("Other bonuses")),
    ("redeemed", _("Redeemed")),
    ("returned", _("Returned by refunds")),
    ("reversed", _("Reversed by refunds")),
    ("expired", _("Expired")),
    ("adjusted", _("Adjusted by staff")),
    ("transfers", _("Moved between members (merges)")),
]
ISSUED = ("purchases", "campaigns", "birthdays", "referrals", "memberships", "other_bonuses")
# The line of a ledger entry, by its kind and, for bonuses, the job or reason that granted it.
LINE = Case(
    When(kind=EntryKind.EARN, then=Value("purchases")),
    When(kind=EntryKind.BONUS, job="send_campaigns", then=Value("campaigns")),
    When(kind=EntryKind.BONUS, job="birthday_offers", then=Value("birthdays")),
    When(kind=EntryKind.BONUS, reason="referral", then=Value("referrals")),
    When(kind=EntryKind.BONUS, reason="membership", then=Value("memberships")),
    When(kind=EntryKind.BONUS, then=Value("other_bonuses")),
    When(kind=EntryKind.REDEEM, then=Value("redeemed")),
    When(kind=EntryKind.REFUND_RETURN, then=Value("returned")),
    When(kind=EntryKind.REFUND_REVERSAL, then=Value("reversed")),
    When(kind=EntryKind.EXPIRE, then=Value("expired")),
    When(kind=EntryKind.ADJUST, then=Value("adjusted")),
    default=Value("transfers"),
    output_field=CharField(),
)
BREAKAGE_WINDOW = timedelta(days=730)  # "the last 24 months"
MAX_MONTHS = 120


def month_start(day):
    return day.replace(day=1)


def next_month(day):
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def months_between(first, last):
    """The first days of the months from ``first``'s to ``last``'s, both included."""
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def month_moment(day):
    """The start of ``day`` in the project's time zone."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _by_line(entries):
    return {row["line"]: row["points"] for row in entries.annotate(line=LINE).values("line")
            .annotate(points=Sum("points")).order_by()}  # fmt: skip


@dataclass
class Month:
    month: date
    opening: int
    lines: dict
    closing: int
    # Cumulative points earned with purchases and redeemed net of refunds, to the month's end.
    earned_to_date: int = 0
    redeemed_to_date: int = 0
    money: dict = field(default_factory=dict)

    @property
    def issued(self):
        return sum(self.lines[line] for line in ISSUED)


def redeemed_net(lines):
    """Points used by members in purchases, net of what refunds gave back (positive)."""
    return -(lines.get("redeemed", 0) + lines.get("returned", 0))


def roll_forward(first, last, point_value):
    """One ``Month`` per calendar month from ``first``'s to ``last``'s: opening, each line,
    closing, in points and (``money``) in the currency at ``point_value``."""
    months = months_between(first, last)
    start, end = month_moment(months[0]), month_moment(next_month(months[-1]))
    before = _by_line(LedgerEntry.objects.filter(created_at__lt=start))
    zone = timezone.get_current_timezone()
    flows = {}
    for row in (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at", tzinfo=zone), line=LINE)
        .values("month", "line")
        .annotate(points=Sum("points"))
        .order_by()
    ):
        month = row["month"]
        month = timezone.localtime(month, zone).date() if isinstance(month, datetime) else month
        flows.setdefault(month, {})[row["line"]] = row["points"]
    opening = sum(before.values())
    earned, redeemed = before.get("purchases", 0), redeemed_net(before)
    result = []
    for month in months:
        lines = {line: flows.get(month, {}).get(line, 0) for line, _label in LINES}
        closing = opening + sum(lines.values())
        earned += lines["purchases"]
        redeemed += redeemed_net(lines)
        row = Month(month, opening, lines, closing, earned, redeemed)
        row.money = {
            "opening": money(opening * point_value),
            "closing": money(closing * point_value),
            **{line: money(points * point_value) for line, points in lines.items()},
        }
        result.append(row)
        opening = closing
    return result


@dataclass
class Breakage:
    rate: Decimal | None  # None: no lot has reached its expiry in the window yet
    expired: int
    points: int
    lots: int


def expected_breakage(as_of):
    """Expired ÷ points over the lots whose expiry fell in the 24 months before ``as_of``
    (points still left on them expire: the job has not run yet)."""
    closed = PointsLot.objects.filter(expires_at__gt=as_of - BREAKAGE_WINDOW, expires_at__lte=as_of)
    totals = closed.aggregate(points=Sum("points"), remaining=Sum("remaining"))
    lots = closed.count()
    points = totals["points"] or 0
    swept = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE, lot__in=closed).aggregate(
        points=Sum("points")
    )["points"]
    expired = -(swept or 0) + (totals["remaining"] or 0)
    rate = round_to(Decimal(expired) / Decimal(points), 6) if points else None
    return Breakage(rate, expired, points, lots)


def ifrs15(months, point_value, breakage):
    """Per month: revenue deferred for points earned with purchases, recognised on redemption,
    breakage recognised, and the contract liability (money). Each month's closing is its opening
    plus deferred less recognised and breakage, in cents, so the table adds up as printed."""
    rate = breakage.rate or Decimal(0)
    price = point_value * (1 - rate)  # stand-alone selling price of a point
    rows = []
    liability = None
    for row in months:
        earned = row.lines["purchases"]
        used = redeemed_net(row.lines)
        if liability is None:
            before_earned = row.earned_to_date - earned
            before_used = row.redeemed_to_date - used
            liability = money(price * before_earned - point_value * before_used)
        deferred = money(price * earned)
        recognised = money(price * used)
        breakage_part = money(point_value * rate * used)
        closing = liability + deferred - recognised - breakage_part
        rows.append(
            {
                "month": row.month,
                "earned": earned,
                "redeemed": used,
                "opening": liability,
                "deferred": deferred,
                "recognised": recognised,
                "breakage": breakage_part,
                "closing": closing,
            }
        )
        liability = closing
    return rows

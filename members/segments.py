"""Segment membership, the one place a segment definition becomes SQL.

The live count on the segment page, a campaign's send and a survey's send all use
``segment_members``, so what a marketer counts is what a campaign or a survey reaches. Each
criterion is a filter or a set-based subquery on the members table (the Python form of a
criterion is its queryset; there is no per-member loop anywhere).
"""

import datetime
import operator
from datetime import timedelta
from decimal import Decimal
from functools import reduce

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date

from analytics.models import PERIODS, MemberStats, Snapshot, StoreBuyer
from loyalty.models import Purchase
from members.models import Member

# The criteria a definition may hold, as the segment form writes them.
CRITERIA = (
    "enrolled_stores",
    "bought_at_stores",
    "tiers",
    "enrolled_from",
    "enrolled_to",
    "lapsed_days",
    "activity_days",
    "purchases_min",
    "purchases_max",
    "spend_min",
    "spend_max",
    "birthday_month",
    "consent",
    "has_email",
    "has_phone",
)
# Purchases and spend are counted over one of the windows the member snapshot keeps.
ACTIVITY_WINDOWS = PERIODS
DEFAULT_ACTIVITY_DAYS = 90


def _int(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decimal(value):
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _ids(values):
    return [number for number in (_int(value) for value in values or []) if number is not None]


def _day_start(value):
    try:
        day = parse_date(value) if isinstance(value, str) else value
    except ValueError:  # well-formed but impossible, such as 2025-02-30
        return None
    if not isinstance(day, datetime.date):
        return None
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _yes_no(members, value, condition):
    if value == "yes":
        return members.filter(condition)
    if value == "no":
        return members.exclude(condition)
    return members


def purchase_snapshot():
    """The member snapshot purchase criteria read (``analytics.models.Snapshot``, built each
    night by ``refresh_analytics``), or None before its first run: then they read the receipts
    live. One small query; the segment page shows its date."""
    return Snapshot.objects.filter(pk=1).only("as_of", "through", "marks").first()


def snapshot_end(snapshot):
    """The moment the snapshot's figures end: midnight after its last complete day, in the
    project's time zone (as ``analytics.jobs.refresh_snapshot`` computes it)."""
    day = snapshot.through + timedelta(days=1)
    midnight = datetime.datetime.combine(day, datetime.time.min)
    return timezone.make_aware(midnight, timezone.get_default_timezone())


def activity_window(value):
    """The window of the purchase and spend bounds: 30, 90 or 365 days, the snapshot's windows.
    A stored definition with another number (saved before the form offered only these) counts
    over the nearest of them, the longer one on a tie, live or from the snapshot alike, so the
    count, the send and the form (which shows the window used) agree."""
    days = _int(value)
    if days is None or days <= 0:
        return DEFAULT_ACTIVITY_DAYS
    return min(ACTIVITY_WINDOWS, key=lambda window: (abs(window - days), -window))


def _uses_purchase_figures(d):
    return (
        bool(_int(d.get("lapsed_days")))
        or bool(_ids(d.get("bought_at_stores")))
        or any(value is not None for value in _bounds(d))
    )


_READ = object()


def segment_members(definition, *, now=None, snapshot=_READ):
    """Active members matching every criterion of a segment definition (unset ones are ignored).

    - ``enrolled_stores``: enrolled in one of these stores (ids); ``bought_at_stores``: bought
      at least once in one of them; ``tiers``: in one of these tiers (ids);
    - ``enrolled_from`` / ``enrolled_to``: enrolled on or after / on or before these dates;
    - ``lapsed_days``: bought before, but not in the last N days;
    - ``last_purchase_on`` (a date; a win-back's daily run, no form field): the last purchase
      was that day, from the receipts;
    - ``purchases_min`` / ``purchases_max`` and ``spend_min`` / ``spend_max``: the number of
      purchases and their amount net of refunds in the last ``activity_days`` days (30, 90 or
      365, default 90: ``activity_window``), bounds included; a lower bound of 0 or none keeps
      members who did not buy at all;
    - ``birthday_month`` (1–12); ``consent``, ``has_email``, ``has_phone``: "yes" or "no".

    Purchase criteria (lapsed, purchases, spend) read the nightly member snapshot when there is
    one (``snapshot``: read here unless given; None for the live receipts): their days end at
    the snapshot's end rather than ``now``, and "lapsed" also drops members who bought since
    that end. Before the first snapshot they read the receipts up to ``now``.

    Every criterion is a filter or a set-based subquery on the members table, so a count is one
    statement however large the program (docs/benchmarks.md: the plans at 1M members / 10M
    purchases).
    """
    now = now or timezone.now()
    d = definition or {}
    if snapshot is _READ:
        snapshot = purchase_snapshot() if _uses_purchase_figures(d) else None
    members = Member.objects.filter(status=Member.Status.ACTIVE).order_by()
    if stores := _ids(d.get("enrolled_stores")):
        members = members.filter(enrolled_store_id__in=stores)
    if tiers := _ids(d.get("tiers")):
        members = members.filter(tier_id__in=tiers)
    if start := _day_start(d.get("enrolled_from")):
        members = members.filter(enrolled_at__gte=start)
    if end := _day_start(d.get("enrolled_to")):
        members = members.filter(enrolled_at__lt=end + timedelta(days=1))
    if month := _int(d.get("birthday_month")):
        members = members.filter(birth_date__month=month)
    members = _yes_no(members, d.get("consent"), Q(marketing_consent=True))
    members = _yes_no(members, d.get("has_email"), ~Q(email=""))
    members = _yes_no(members, d.get("has_phone"), ~Q(phone=""))
    if stores := _ids(d.get("bought_at_stores")):
        members = members.filter(id__in=_bought_at(stores, snapshot))
    if lapsed := _int(d.get("lapsed_days")):
        members = _lapsed(members, lapsed, now, snapshot)
    if (day := _day_start(d.get("last_purchase_on"))) is not None:
        members = _last_bought_on(members, day)
    if snapshot is None:
        members = _activity(members, d, now)
    else:
        members = _snapshot_activity(members, d, snapshot_end(snapshot))
    if bounds := d.get("ids"):  # an id range [low, high): the benchmark's segment, not a form field
        members = members.filter(id__gte=int(bounds[0]), id__lt=int(bounds[1]))
    return members


def _bought_at(stores, snapshot):
    """The ids of members who bought at one of ``stores``, for an IN (hashed once against the
    members rather than probed per member: a million probes at scale). With a snapshot: its
    (store, member) pairs, the receipts since (recorded after the snapshot's mark of receipt
    ids, whatever their purchase time, or dated after its end), and the members into whom a
    buyer's card was merged. Before the first snapshot: the receipts."""
    receipts = Purchase.objects.filter(store_id__in=stores).order_by()
    if snapshot is None:
        return receipts.filter(member__isnull=False).values("member_id")
    since = Q(occurred_at__gte=snapshot_end(snapshot))
    if (mark := (snapshot.marks or {}).get("purchase")) is not None:
        since |= Q(pk__gt=mark)
    pairs = StoreBuyer.objects.filter(store_id__in=stores).order_by()
    absorbed = Member.objects.filter(
        merged_into__isnull=False, id__in=pairs.values("member_id")
    ).values("merged_into_id")
    # UNION, not UNION ALL: the planner estimates a UNION ALL under IN at 200 rows and probes
    # the members' index once per pair (4x slower at 1M members). The receipts since are made
    # distinct first: a busy day's receipts come from far fewer members, and the UNION then
    # hashes those rather than every receipt. Anonymous receipts add one NULL, which matches no
    # member; testing for it let the planner AND a bitmap of every named receipt (1.05 -> 0.80 s
    # with 458k receipts since).
    return (
        pairs.values("member_id")
        .union(receipts.filter(since).values("member_id").distinct())
        .union(absorbed.order_by())
    )


def _lapsed(members, days, now, snapshot):
    if snapshot is None:
        cutoff = now - timedelta(days=days)
        return members.filter(
            Exists(Purchase.objects.filter(member=OuterRef("pk"), occurred_at__lte=cutoff)),
            ~Exists(Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gt=cutoff)),
        )
    # The last purchase N days or more before the snapshot's end, and none since that end
    # (about a day of receipts, read by their time index and hashed once).
    since = Purchase.objects.filter(occurred_at__gte=snapshot_end(snapshot), member__isnull=False)
    return members.filter(
        id__in=MemberStats.objects.filter(last_age__gte=days).values("member_id")
    ).exclude(id__in=since.order_by().values("member_id"))


def _last_bought_on(members, start):
    """Members whose last purchase was on the day that begins at ``start`` (read live: the
    day's buyers by the receipts' time index, less those who bought since)."""
    end = _day_start((start + timedelta(days=1)).date())
    day = Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end, member__isnull=False)
    since = Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gte=end)
    return members.filter(id__in=day.order_by().values("member_id")).filter(~Exists(since))


def _bounds(d):
    return (
        _int(d.get("purchases_min")),
        _int(d.get("purchases_max")),
        _decimal(d.get("spend_min")),
        _decimal(d.get("spend_max")),
    )


def _snapshot_activity(members, d, end):
    """The purchase and spend bounds on the snapshot's n/r columns of the window. Its spend
    (r30/r90/r365) is gross; what was refunded of those receipts is subtracted for the few
    members who have refunds there (the partial index of refunded receipts), and only for
    members whose gross amount already decides nothing, so most rows never look it up."""
    low_n, high_n, low_s, high_s = _bounds(d)
    if low_n is None and high_n is None and low_s is None and high_s is None:
        return members
    days = activity_window(d.get("activity_days"))
    gross = F(f"r{days}")
    refunded = (
        Purchase.objects.filter(
            member_id=OuterRef("member_id"),
            refunded_amount__gt=0,
            occurred_at__gte=end - timedelta(days=days),
            occurred_at__lt=end,
        )
        .order_by()
        .values("member_id")
        .annotate(total=Sum("refunded_amount"))
        .values("total")
    )
    net = ExpressionWrapper(
        gross - Coalesce(Subquery(refunded), Decimal("0.00")), output_field=DecimalField()
    )
    stats = MemberStats.objects.order_by()
    if (low_n or 0) > 0 or (low_s or 0) > 0:
        # Only buyers can match: the members whose window figures are within the bounds. Net
        # spend is at most gross: gross >= low is a cheap necessary test, run first.
        inside = Q()
        if low_n:
            inside &= Q(**{f"n{days}__gte": low_n})
        if high_n is not None:
            inside &= Q(**{f"n{days}__lte": high_n})
        if low_s:
            inside &= Q(**{f"r{days}__gte": low_s})
        stats = stats.filter(inside)
        if low_s or high_s is not None:
            stats = stats.alias(net=net)
            if low_s:
                stats = stats.filter(net__gte=low_s)
            if high_s is not None:
                stats = stats.filter(Q(**{f"r{days}__lte": high_s}) | Q(net__lte=high_s))
        return members.filter(id__in=stats.values("member_id"))
    # Only upper bounds: everyone but the members above them (no snapshot row: nothing bought).
    above = [Q(**{f"n{days}__gt": high_n})] if high_n is not None else []
    if high_s is not None:
        stats = stats.alias(net=net)
        above.append(Q(**{f"r{days}__gt": high_s}) & Q(net__gt=high_s))
    # NOT EXISTS, an anti-join: NOT IN over half a million ids would not fit a hashed subplan.
    above = stats.filter(reduce(operator.or_, above), member_id=OuterRef("pk"))
    return members.filter(~Exists(above))


def _activity(members, d, now):
    low_n, high_n, low_s, high_s = _bounds(d)
    if low_n is None and high_n is None and low_s is None and high_s is None:
        return members
    days = activity_window(d.get("activity_days"))
    recent = (
        Purchase.objects.filter(occurred_at__gt=now - timedelta(days=days), member__isnull=False)
        .order_by()
        .values("member_id")
        .annotate(n=Count("id"), spent=Sum(F("amount") - F("refunded_amount")))
    )
    if (low_n or 0) > 0 or (low_s or 0) > 0:
        # Only buyers can match: the members among the window's buyers within the bounds.
        inside = Q()
        if low_n:
            inside &= Q(n__gte=low_n)
        if high_n is not None:
            inside &= Q(n__lte=high_n)
        if low_s:
            inside &= Q(spent__gte=low_s)
        if high_s is not None:
            inside &= Q(spent__lte=high_s)
        return members.filter(id__in=recent.filter(inside).values("member_id"))
    # Only upper bounds: everyone but the buyers above them (non-buyers have 0 and 0.00).
    above = [Q(n__gt=high_n)] if high_n is not None else []
    if high_s is not None:
        above.append(Q(spent__gt=high_s))
    return members.exclude(id__in=recent.filter(reduce(operator.or_, above)).values("member_id"))


def segment_count(definition, *, now=None, snapshot=_READ):
    return segment_members(definition, now=now, snapshot=snapshot).count()

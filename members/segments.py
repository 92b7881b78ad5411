"""Segment membership, the one place a segment definition becomes SQL.

The live count on the segment page, a campaign's send and a survey's send all use
``segment_members``, so what a marketer counts is what a campaign or a survey reaches. Each
criterion is a filter or a set-based subquery on the members table (the Python form of a
criterion is its queryset; there is no per-member loop anywhere). ``segment_count`` counts the
same members, from the snapshot's side when the criteria are about purchases alone.
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
    members = Member.objects.filter(*_member_criteria(d), status=Member.Status.ACTIVE).order_by()
    if stores := _ids(d.get("bought_at_stores")):
        members = members.filter(id__in=_bought_at(stores, snapshot))
    if snapshot is None:
        if lapsed := _int(d.get("lapsed_days")):
            members = _lapsed(members, lapsed, now)
        return _activity(members, d, now)
    rows, above = _snapshot_rows(d, snapshot_end(snapshot))
    if rows is not None:
        members = members.filter(id__in=rows.values("member_id"))
    if above is not None:
        # NOT EXISTS, an anti-join: NOT IN over half a million ids would not fit a hashed subplan.
        members = members.filter(~Exists(above.filter(member_id=OuterRef("pk"))))
    return members


def segment_count(definition, *, now=None, snapshot=_READ):
    """How many members ``segment_members`` gives, the same members, counted where it is cheapest.

    A definition of purchase criteria alone, with a snapshot, is counted on the snapshot's side:
    the buyers it keeps (one snapshot row or one "bought at" id each) less those whose member is
    not active now, a few thousand read from the members' partial index, rather than a join
    with the whole members table (at 1M members the join was most of every such count). A
    buyer is always a member: receipts and ledger entries protect a member from deletion.
    """
    d = definition or {}
    if snapshot is _READ:
        snapshot = purchase_snapshot() if _uses_purchase_figures(d) else None
    if snapshot is not None and _uses_purchase_figures(d) and not _member_criteria(d):
        count = _count_buyers(d, snapshot)
        if count is not None:
            return count
    return segment_members(d, now=now, snapshot=snapshot).count()


def _count_buyers(d, snapshot):
    """The count of a definition of purchase criteria alone, from the snapshot's side, or None
    for the one shape it does not cover (upper bounds with "bought at" and nothing else)."""
    stores = _ids(d.get("bought_at_stores"))
    rows, above = _snapshot_rows(d, snapshot_end(snapshot))
    inactive = Member.objects.exclude(status=Member.Status.ACTIVE).values("id")
    if rows is not None:
        if stores:
            rows = rows.filter(member_id__in=_bought_at(stores, snapshot))
        return rows.exclude(member_id__in=inactive).count()
    if stores and above is None:
        return _count_bought_at(stores, snapshot, inactive)
    if above is not None and not stores:
        # Everyone but the members above the bounds: the active members less the active ones
        # among the rows above (two counts; a member without a row bought nothing).
        everyone = Member.objects.filter(status=Member.Status.ACTIVE).count()
        return everyone - above.exclude(member_id__in=inactive).count()
    return None


def _member_criteria(d):
    """The criteria on the member's own fields, as conditions on the members table."""
    conditions = []
    if stores := _ids(d.get("enrolled_stores")):
        conditions.append(Q(enrolled_store_id__in=stores))
    if tiers := _ids(d.get("tiers")):
        conditions.append(Q(tier_id__in=tiers))
    if start := _day_start(d.get("enrolled_from")):
        conditions.append(Q(enrolled_at__gte=start))
    if end := _day_start(d.get("enrolled_to")):
        conditions.append(Q(enrolled_at__lt=end + timedelta(days=1)))
    if month := _int(d.get("birthday_month")):
        conditions.append(Q(birth_date__month=month))
    flags = {
        "consent": Q(marketing_consent=True),
        "has_email": ~Q(email=""),
        # An erased member's phone is NULL, which ~Q(phone="") alone would count as a phone.
        "has_phone": Q(phone__isnull=False) & ~Q(phone=""),
    }
    for name, condition in flags.items():
        if d.get(name) == "yes":
            conditions.append(condition)
        elif d.get(name) == "no":
            conditions.append(~condition)
    if bounds := d.get("ids"):  # an id range [low, high): the benchmark's segment, not a form field
        conditions.append(Q(id__gte=int(bounds[0]), id__lt=int(bounds[1])))
    if (day := _day_start(d.get("last_purchase_on"))) is not None:
        conditions += _last_bought_on(day)
    return conditions


def _last_bought_on(start):
    """Members whose last purchase was on the day that begins at ``start`` (read live: the
    day's buyers by the receipts' time index, less those who bought since)."""
    end = _day_start((start + timedelta(days=1)).date())
    day = Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end, member__isnull=False)
    since = Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gte=end)
    return [Q(id__in=day.order_by().values("member_id")), ~Exists(since)]


def _bought_at(stores, snapshot):
    """The ids of members who bought at one of ``stores``, for an IN (hashed once against the
    members rather than probed per member: a million probes at scale). With a snapshot: its
    (store, member) pairs, the receipts since (recorded after the snapshot's mark of receipt
    ids, whatever their purchase time, or dated after its end), and the members into whom a
    buyer's card was merged. Before the first snapshot: the receipts."""
    if snapshot is None:
        receipts = Purchase.objects.filter(store_id__in=stores, member__isnull=False)
        return receipts.order_by().values("member_id")
    pairs, since, absorbed = _bought_at_parts(stores, snapshot)
    # UNION, not UNION ALL: the planner estimates a UNION ALL under IN at 200 rows and probes
    # the members' index once per pair (4x slower at 1M members). The receipts since are made
    # distinct first: a busy day's receipts come from far fewer members, and the UNION then
    # hashes those rather than every receipt. Anonymous receipts add one NULL, which matches no
    # member; testing for it let the planner AND a bitmap of every named receipt (1.05 -> 0.80 s
    # with 458k receipts since).
    return (
        pairs.values("member_id")
        .union(since.values("member_id").distinct())
        .union(absorbed.values("merged_into_id"))
    )


def _bought_at_parts(stores, snapshot):
    """The snapshot's pairs at ``stores``, the receipts there since it, and the merged cards of
    the pairs' members (``_bought_at``)."""
    since = Q(occurred_at__gte=snapshot_end(snapshot))
    if (mark := (snapshot.marks or {}).get("purchase")) is not None:
        since |= Q(pk__gt=mark)
    pairs = StoreBuyer.objects.filter(store_id__in=stores).order_by()
    receipts = Purchase.objects.filter(since, store_id__in=stores).order_by()
    absorbed = Member.objects.filter(
        merged_into__isnull=False, id__in=pairs.values("member_id")
    ).order_by()
    return pairs, receipts, absorbed


def _count_bought_at(stores, snapshot, inactive):
    """The active members who bought at one of ``stores``: the pairs' members (one pair each at
    one store) plus those of the receipts since and the merged cards' targets who have no pair
    there. Two counts, so the 460,000 pairs of a large store are counted from their index
    rather than hashed against the rest for a UNION (290 -> 115 ms at 1M members)."""
    pairs, since, absorbed = _bought_at_parts(stores, snapshot)
    buyers = pairs.exclude(member_id__in=inactive).values("member_id")
    if len(stores) > 1:
        buyers = buyers.distinct()

    def no_pair(column):
        return ~Exists(StoreBuyer.objects.filter(store_id__in=stores, member_id=OuterRef(column)))

    # Joined to their members (a day's receipts, a few merged cards): drops anonymous receipts.
    since = since.filter(no_pair("member_id"), member__status=Member.Status.ACTIVE)
    absorbed = absorbed.filter(no_pair("merged_into_id"), merged_into__status=Member.Status.ACTIVE)
    others = since.values("member_id").distinct().union(absorbed.values("merged_into_id"))
    return buyers.count() + others.count()


def _lapsed(members, days, now):
    """Lapsed over the live receipts (before the first snapshot)."""
    cutoff = now - timedelta(days=days)
    return members.filter(
        Exists(Purchase.objects.filter(member=OuterRef("pk"), occurred_at__lte=cutoff)),
        ~Exists(Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gt=cutoff)),
    )


def _bounds(d):
    return (
        _int(d.get("purchases_min")),
        _int(d.get("purchases_max")),
        _decimal(d.get("spend_min")),
        _decimal(d.get("spend_max")),
    )


def _snapshot_rows(d, end):
    """The purchase criteria on the snapshot's rows (one per member), as ``(rows, above)``.

    ``rows``: the rows a member must have, when "lapsed" or a lower bound asks for a buyer (None
    otherwise): the last purchase N days or more before the snapshot's end and none since that
    end (about a day of receipts, read by their time index and hashed once), and the window's
    figures within the bounds. ``above``: the rows above upper bounds that come alone, whose
    members are left out (a member without a row bought nothing); None without them.

    Spend is net of refunds: the snapshot's r30/r90/r365 are gross, and what was refunded of
    those receipts is subtracted only for the members with a refunded receipt in the window
    (a hashed list from the partial index of refunded receipts) whose gross amount does not
    already decide, so most rows never look a refund up (156k look-ups at 1M members before)."""
    low_n, high_n, low_s, high_s = _bounds(d)
    stats = MemberStats.objects.order_by()
    bounded = any(value is not None for value in (low_n, high_n, low_s, high_s))
    days = activity_window(d.get("activity_days"))
    n, gross = f"n{days}", f"r{days}"
    refunded = Q()
    if low_s is not None or high_s is not None:
        window = Purchase.objects.filter(
            refunded_amount__gt=0,
            occurred_at__gte=end - timedelta(days=days),
            occurred_at__lt=end,
        ).order_by()
        total = (
            window.filter(member_id=OuterRef("member_id"))
            .values("member_id")
            .annotate(total=Sum("refunded_amount"))
            .values("total")
        )
        net = ExpressionWrapper(
            F(gross) - Coalesce(Subquery(total), Decimal("0.00")), output_field=DecimalField()
        )
        stats = stats.alias(net=net)
        refunded = Q(member_id__in=window.filter(member__isnull=False).values("member_id"))
    rows = None
    if lapsed := _int(d.get("lapsed_days")):
        since = Purchase.objects.filter(occurred_at__gte=end, member__isnull=False).order_by()
        rows = stats.filter(last_age__gte=lapsed).exclude(member_id__in=since.values("member_id"))
    if not bounded:
        return rows, None
    if (low_n or 0) > 0 or (low_s or 0) > 0:
        # Only buyers can match: the rows within the bounds. Net spend is at most gross:
        # gross >= low is a cheap necessary test, run first.
        inside = Q()
        if low_n:
            inside &= Q(**{f"{n}__gte": low_n})
        if high_n is not None:
            inside &= Q(**{f"{n}__lte": high_n})
        if low_s:
            inside &= Q(**{f"{gross}__gte": low_s}) & (~refunded | Q(net__gte=low_s))
        if high_s is not None:
            inside &= Q(**{f"{gross}__lte": high_s}) | (refunded & Q(net__lte=high_s))
        return (rows if rows is not None else stats).filter(inside), None
    # Only upper bounds: the rows above them.
    above = [Q(**{f"{n}__gt": high_n})] if high_n is not None else []
    if high_s is not None:
        above.append(Q(**{f"{gross}__gt": high_s}) & (~refunded | Q(net__gt=high_s)))
    if not above:  # a lower bound of 0 alone keeps everyone
        return rows, None
    above = reduce(operator.or_, above)
    if rows is not None:
        return rows.exclude(above), None
    return None, stats.filter(above)


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
    if not above:  # a lower bound of 0 alone keeps everyone
        return members
    return members.exclude(id__in=recent.filter(reduce(operator.or_, above)).values("member_id"))

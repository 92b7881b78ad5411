"""What the back-office asks about members: scoped to the user's stores, with its joins."""

import re
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    Sum,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.money import money
from loyalty.engine.purchases import qualifying_sql
from loyalty.models import LedgerEntry, Purchase, PurchaseLine, Refund, Store, Tier
from members.models import Member, is_valid_card_number


def stores_for(user):
    """The stores a user may see: all of them, or the ones a store manager manages."""
    if user.has_perm("loyalty.all_stores"):
        return Store.objects.all()
    return user.stores.all()


def sees_all_stores(user):
    return user.has_perm("loyalty.all_stores")


def members_for(user):
    """Members the user may see. A store manager sees members enrolled at or buying in their
    stores; everyone else with access sees every member. Out of scope answers 404, not 403."""
    members = Member.objects.all()
    if sees_all_stores(user):
        return members
    store_ids = list(user.stores.values_list("id", flat=True))
    bought_here = Purchase.objects.filter(member=OuterRef("pk"), store_id__in=store_ids)
    return members.filter(Q(enrolled_store_id__in=store_ids) | Exists(bought_here))


def purchases_for(user):
    purchases = Purchase.objects.all()
    if sees_all_stores(user):
        return purchases
    return purchases.filter(store__in=user.stores.all())


def search_members(user, text, limit=20):
    """Members matching what was typed: a card number, a phone in any common format, an e-mail
    or part of a name. Exact card and phone matches use unique indexes; the rest uses the
    trigram index on search_text (PostgreSQL)."""
    text = (text or "").strip()
    members = members_for(user).select_related("tier")
    if len(text) < 2:
        return members.none()
    digits = re.sub(r"\D", "", text)
    only_digits = bool(digits) and re.fullmatch(r"[\d\s()+\-.]+", text) is not None
    if only_digits and is_valid_card_number(digits):
        return members.filter(card_number=digits)[:limit]
    if only_digits and len(digits) >= 10:
        from members.services import normalise_phone

        try:
            phone = normalise_phone(text)
        except LoyaltyError:
            phone = None
        if phone:
            exact = members.filter(phone=phone)
            if exact.exists():
                return exact[:limit]
    needle = digits if only_digits else text.lower()
    if len(needle) < 3:
        # Trigrams need three characters; shorter text would scan every member.
        return members.none()
    return members.filter(search_text__contains=needle).order_by("-id")[:limit]


def next_tier(member):
    """The tier above the member's, from the per-process ladder (no query)."""
    return next((tier for tier in Tier.ladder() if tier.threshold > member.tier.threshold), None)


# The member's open lots (available, pending, expiring within 30 days) and qualifying value,
# in one statement.
OVERVIEW_SQL = """
SELECT
    COALESCE(SUM(CASE WHEN available_from <= %s THEN remaining ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN available_from > %s THEN remaining ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN available_from <= %s AND expires_at <= %s
                 THEN remaining ELSE 0 END), 0),
    ({qualifying})
FROM loyalty_pointslot WHERE member_id = %s AND remaining > 0 AND expires_at > %s
"""


def member_overview(member, now, program):
    """Balance figures and tier progress for the member page (one query)."""
    qualifying_query, qualifying_params = qualifying_sql(program, member.pk, now)
    when = connection.ops.adapt_datetimefield_value(now)
    soon = connection.ops.adapt_datetimefield_value(now + timedelta(days=30))
    with connection.cursor() as cursor:
        cursor.execute(
            OVERVIEW_SQL.format(qualifying=qualifying_query),
            [when, when, when, soon, *qualifying_params, member.pk, when],
        )
        available, pending, expiring, qualifying = cursor.fetchone()
    qualifying = money(qualifying)
    upcoming = next_tier(member)
    progress = None
    if upcoming is not None:
        span = upcoming.threshold - member.tier.threshold
        done = max(0, qualifying - member.tier.threshold)
        progress = {
            "tier": upcoming,
            "missing": max(0, upcoming.threshold - qualifying),
            "percent": int(min(100, done * 100 / span)) if span else 100,
        }
    return {
        "available": int(available) - member.points_debt,
        "pending": int(pending),
        "expiring_30": int(expiring),
        "debt": member.points_debt,
        "qualifying": qualifying,
        "next": progress,
    }


LEDGER_KINDS = [choice for choice, _label in LedgerEntry._meta.get_field("kind").choices]


def member_ledger(member, user, kind=None):
    """The member's points history, newest first. Every entry is shown, so that the history
    adds up to the balance; ``receipt`` is the receipt number of the entry's purchase, or None
    when it was made at a store the user does not see (a store manager learns that points
    came from elsewhere, not another store's receipt)."""
    # Only what the page shows: the receipt number and the staff name, not their whole rows.
    entries = (
        LedgerEntry.objects.filter(member=member)
        .select_related("purchase", "staff")
        .only(
            "created_at",
            "kind",
            "points",
            "expires_at",
            "reason",
            "purchase__external_id",
            "staff__username",
        )
    )
    if sees_all_stores(user):
        receipt = F("purchase__external_id")
    else:
        receipt = Case(
            When(purchase__isnull=True, then=Value("")),
            When(purchase__store__in=user.stores.all(), then=F("purchase__external_id")),
            default=None,
        )
    entries = entries.annotate(receipt=receipt)
    if kind in LEDGER_KINDS:
        entries = entries.filter(kind=kind)
    return entries.order_by("-id")


MAX_PAGE = 100_000  # keeps the OFFSET of a hand-typed page number within what SQL accepts


class HistoryPage:
    """One page of a history (a member's, or every receipt), newest first, without counting it
    all: one row more than the page says whether an older page exists. Out-of-range or malformed
    page numbers give the first page."""

    def __init__(self, queryset, number, per_page):
        try:
            number = min(max(1, int(number)), MAX_PAGE)
        except (TypeError, ValueError):
            number = 1
        rows = list(queryset[(number - 1) * per_page : number * per_page + 1])
        if not rows and number > 1:
            number, rows = 1, list(queryset[: per_page + 1])
        self.number = number
        self.object_list = rows[:per_page]
        self.has_next = len(rows) > per_page
        self.has_previous = number > 1
        self.has_other_pages = self.has_next or self.has_previous
        self.next_page_number = number + 1
        self.previous_page_number = number - 1

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)


def member_purchases(member, user):
    """The member's receipts the user may see (a store manager: their stores' only), newest
    first, with their store. Lines and refunds are fetched by ``with_details`` for the receipt
    opened."""
    return (
        purchases_for(user)
        .filter(member=member)
        .select_related("store")
        .defer("response", "fingerprint")
        .order_by("-occurred_at", "-id")
    )


def with_details(purchases):
    """Attach lines and refunds to receipts: a query for the lines, and one for the refunds
    only when one of them was refunded."""
    purchases = list(purchases)
    lines = Prefetch("lines", queryset=PurchaseLine.objects.order_by("id"))
    prefetch_related_objects(purchases, lines)
    refunded = [purchase for purchase in purchases if purchase.refunded_amount]
    prefetch_related_objects(refunded, Prefetch("refunds", queryset=Refund.objects.order_by("id")))
    return purchases


def today_figures(user, now):
    """What happened today in the user's stores: purchases, revenue, points, enrolments."""
    from django.db.models import Count

    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    purchases = purchases_for(user).filter(occurred_at__gte=start, occurred_at__lte=now)
    sums = purchases.aggregate(
        count=Count("id"),
        members=Count("id", filter=Q(member__isnull=False)),
        revenue=Coalesce(Sum("paid_amount"), Decimal("0")),
        earned=Coalesce(Sum("earned_points"), 0),
        redeemed=Coalesce(Sum("redeemed_points"), 0),
    )
    enrolled = Member.objects.filter(enrolled_at__gte=start, enrolled_at__lte=now)
    if not sees_all_stores(user):
        enrolled = enrolled.filter(enrolled_store__in=user.stores.all())
    sums["enrolled"] = enrolled.count()
    return sums

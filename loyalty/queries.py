"""Read-only questions the pages, reports and commands ask of the engine."""

from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from loyalty.models import LedgerEntry, PointsLot
from members.models import Member


def ledger_drift():
    """Members whose cached balance disagrees with their ledger or their lots (section 3).

    The invariant: balance = sum of the member's ledger entries = sum of remaining lot points
    minus debt. Returns rows of (card_number, cached balance, ledger sum, lots sum, debt).
    """
    entries = (
        LedgerEntry.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum("points"))
        .values("total")
    )
    lots = (
        PointsLot.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum("remaining"))
        .values("total")
    )
    members = Member.objects.annotate(
        ledger_sum=Coalesce(Subquery(entries), Value(0)),
        lots_sum=Coalesce(Subquery(lots), Value(0)),
    )
    drifting = members.exclude(points_balance=F("ledger_sum")) | members.exclude(
        points_balance=F("lots_sum") - F("points_debt")
    )
    return drifting.order_by("pk").values_list(
        "card_number", "points_balance", "ledger_sum", "lots_sum", "points_debt"
    )

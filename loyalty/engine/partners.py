"""Partners (coalition): the monthly settlement of points issued and spent at each partner."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from loyalty.models import LedgerEntry, ProgramSettings, Store


@dataclass(frozen=True)
class SettlementRow:
    store: Store
    issued: int
    spent: int
    point_value: Decimal

    @property
    def net(self):
        """Points the partner issued beyond those spent with it (what it owes the program)."""
        return self.issued - self.spent

    @property
    def issued_value(self):
        return self.issued * self.point_value

    @property
    def spent_value(self):
        return self.spent * self.point_value

    @property
    def net_value(self):
        return self.net * self.point_value


def month_bounds(year, month, tz=None):
    """The month as [start, end) in the program's time zone."""
    tz = tz or timezone.get_default_timezone()
    start = datetime.datetime(year, month, 1, tzinfo=tz)
    end = datetime.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start, end


def settlement(year, month):
    """Per partner, the points issued (earned, net of refund reversals) and spent (net of points
    given back by refunds) on its purchases during the month, and their value in money.

    One grouped query over the month's ledger entries, whatever the number of partners.
    """
    start, end = month_bounds(year, month)
    point_value = ProgramSettings.load().point_value
    sums = {
        row["purchase__store"]: row
        for row in LedgerEntry.objects.filter(
            purchase__store__kind=Store.Kind.PARTNER, created_at__gte=start, created_at__lt=end
        )
        .values("purchase__store")
        .annotate(
            issued=Coalesce(Sum("points", filter=Q(kind__in=["earn", "refund_reversal"])), 0),
            spent=Coalesce(Sum("points", filter=Q(kind__in=["redeem", "refund_return"])), 0),
        )
        .order_by()
    }
    rows = []
    for store in Store.objects.filter(kind=Store.Kind.PARTNER).order_by("code"):
        found = sums.get(store.pk, {"issued": 0, "spent": 0})
        rows.append(
            SettlementRow(
                store=store,
                issued=found["issued"],
                spent=-found["spent"],
                point_value=point_value,
            )
        )
    return rows

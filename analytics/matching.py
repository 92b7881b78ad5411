"""Members against comparable non-members by coarsened exact matching (SPEC 8.1).

Two periods of P days end at the moment: the pre-period, then the outcome period. Units are
identified buyers who bought in the pre-period. Members are those enrolled before the outcome
period began (members throughout it); comparable non-members are buyers who were not members in
the outcome period (their purchases are imported history or matched to them before they joined).
Strata: enrolment store, first-purchase month, and quintile bands of pre-period spend and of
pre-period purchase count (quintiles over all units together). The raw gap is the members' mean
outcome spend less the non-members'; the matched gap is the mean of the within-stratum differences
weighted by members per stratum, over strata holding both; how much of the raw gap survives
matching, the share of members matched, and a 95% interval from a bootstrap of units (fixed seed).
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from members.models import Member

PERIOD_DAYS = 180
RESAMPLES = 1000
SEED = 2026
BANDS = 5


@dataclass
class Matched:
    days: int
    members: int
    non_members: int
    matched_members: int = 0
    strata: int = 0
    raw_gap: float | None = None
    matched_gap: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def share_matched(self):
        return self.matched_members / self.members if self.members else None

    @property
    def surviving(self):
        """The share of the raw gap left after matching (None when there is no raw gap)."""
        if self.raw_gap in (None, 0) or self.matched_gap is None:
            return None
        return self.matched_gap / self.raw_gap


def _units(as_of, days):
    outcome_start = as_of - timedelta(days=days)
    pre_start = outcome_start - timedelta(days=days)
    pre = Q(purchases__occurred_at__gte=pre_start, purchases__occurred_at__lt=outcome_start)
    outcome = Q(purchases__occurred_at__gte=outcome_start, purchases__occurred_at__lt=as_of)
    rows = (
        Member.objects.filter(Q(enrolled_at__lt=outcome_start) | Q(enrolled_at__gte=as_of))
        .annotate(
            first=Min("purchases__occurred_at"),
            pre_spend=Sum("purchases__amount", filter=pre),
            pre_count=Count("purchases", filter=pre),
            spend=Sum("purchases__amount", filter=outcome),
        )
        .filter(pre_count__gt=0)
        .values_list("enrolled_at", "enrolled_store_id", "first", "pre_spend", "pre_count", "spend")
        .order_by()
    )
    member, store, month, pre_spend, pre_count, spend = [], [], [], [], [], []
    for enrolled, store_id, first, before, count, after in rows:
        member.append(enrolled < outcome_start)
        store.append(store_id or 0)
        local = timezone.localtime(first)
        month.append(local.year * 12 + local.month)
        pre_spend.append(float(before or 0))
        pre_count.append(count)
        spend.append(float(after or 0))
    return (np.array(member, dtype=bool), np.array(store), np.array(month),
            np.array(pre_spend), np.array(pre_count, dtype=float), np.array(spend))  # fmt: skip


def _bands(values):
    """Quintile band (0-4) of each value; ties share a band."""
    edges = np.quantile(values, np.linspace(0, 1, BANDS + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def _gaps(treated, outcome, stratum, weights=None):
    """(raw gap, matched gap, matched members, strata) with unit weights (bootstrap counts)."""
    weights = np.ones(len(outcome)) if weights is None else weights
    n_strata = stratum.max() + 1
    t_w = np.bincount(stratum, weights * treated, n_strata)
    c_w = np.bincount(stratum, weights * ~treated, n_strata)
    t_sum = np.bincount(stratum, weights * treated * outcome, n_strata)
    c_sum = np.bincount(stratum, weights * ~treated * outcome, n_strata)
    if not t_w.sum() or not c_w.sum():
        return None, None, 0, 0
    raw = t_sum.sum() / t_w.sum() - c_sum.sum() / c_w.sum()
    both = (t_w > 0) & (c_w > 0)
    if not both.any():
        return raw, None, 0, 0
    within = t_sum[both] / t_w[both] - c_sum[both] / c_w[both]
    matched = float((within * t_w[both]).sum() / t_w[both].sum())
    return float(raw), matched, float(t_w[both].sum()), int(both.sum())


def coarsened_exact_matching(as_of=None, days=PERIOD_DAYS):
    as_of = as_of or timezone.now()
    treated, store, month, pre_spend, pre_count, spend = _units(as_of, days)
    result = Matched(days=days, members=int(treated.sum()), non_members=int((~treated).sum()))
    if not result.members or not result.non_members:
        return result
    keys = np.stack([store, month, _bands(pre_spend), _bands(pre_count)], axis=1)
    _unique, stratum = np.unique(keys, axis=0, return_inverse=True)
    stratum = stratum.reshape(-1)
    raw, matched, matched_members, strata = _gaps(treated, spend, stratum)
    result.raw_gap, result.matched_gap = raw, matched
    result.matched_members, result.strata = int(matched_members), strata
    if matched is None:
        return result
    rng = np.random.default_rng(SEED)
    boot = []
    for _ in range(RESAMPLES):
        weights = np.bincount(rng.integers(0, len(spend), len(spend)), minlength=len(spend))
        value = _gaps(treated, spend, stratum, weights.astype(float))[1]
        if value is not None:
            boot.append(value)
    result.low, result.high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    return result


def to_json(result):
    return asdict(result)


def from_json(data):
    return Matched(**data)

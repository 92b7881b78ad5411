"""Reads of the campaigns app: the engine's multipliers and campaign results (segments:
members/segments.py)."""

import math
from collections import namedtuple
from datetime import timedelta
from decimal import Decimal
from statistics import NormalDist

from django.db import connection
from scipy import stats

from campaigns.models import Campaign, CampaignRecipient, CampaignVariant
from loyalty.engine.money import money
from loyalty.models.program import cached_rule, clear_rules_cache

# --- The engine's read: earn multipliers ------------------------------------------------------

# ``factors``: the factor of each variant, by number (1 is the campaign's own).
Multiplier = namedtuple("Multiplier", "campaign_id factors store_ids starts ends")


def _load_multipliers():
    """Every sent (or sending) multiplier campaign, ended ones included: a receipt may reach
    the API long after the purchase (an offline till, an import that earns) and still earns
    by the purchase time. Three queries over a few rows (a merchant runs a few a month)."""
    rows = list(
        Campaign.objects.filter(
            kind=Campaign.Kind.MULTIPLIER,
            status__in=[Campaign.Status.SENDING, Campaign.Status.DONE],
        )
        .order_by("id")
        .values_list("id", "factor", "starts_at", "ends_at")
    )
    if not rows:
        return ()
    ids = [row[0] for row in rows]
    stores = {}
    through = Campaign.stores.through.objects.filter(campaign_id__in=ids)
    for campaign_id, store_id in through.values_list("campaign_id", "store_id"):
        stores.setdefault(campaign_id, set()).add(store_id)
    factors = {pk: {1: factor} for pk, factor, _start, _end in rows}
    variants = CampaignVariant.objects.filter(campaign_id__in=ids)
    for campaign_id, number, factor in variants.values_list("campaign_id", "number", "factor"):
        factors[campaign_id][number] = factor
    return tuple(
        Multiplier(pk, factors[pk], frozenset(stores[pk]) if pk in stores else None, start, end)
        for pk, _factor, start, end in rows
    )


def active_multipliers(when):
    """Earn-multiplier campaigns whose window holds ``when`` (the purchase time): a tuple of
    ``Multiplier`` (campaign_id, factor, frozenset of store ids or None for every store,
    starts, ends).

    Read from a per-process copy refreshed like the program rules (``cached_rule``), so a
    purchase costs no statement for it; saving, sending or cancelling a campaign clears this
    process's copy (``clear_multipliers``), other processes see the change within seconds.
    """
    loaded = cached_rule("campaign_multipliers", _load_multipliers)
    return tuple(m for m in loaded if m.starts <= when < m.ends)


def clear_multipliers():
    clear_rules_cache()


def earn_multiplier(member_id, store_id, when):
    """The product of the earn multipliers of running campaigns that cover this member (in
    their test group) at this store at ``when``: the engine's source of multipliers
    (registered in CampaignsConfig.ready). Free of SQL when no multiplier campaign is running
    (the campaigns come from a per-process copy); otherwise one indexed query."""
    multipliers = active_multipliers(when)
    if not multipliers or member_id is None:
        return Decimal(1)
    return member_multiplier(member_id, store_id, multipliers)


def member_multiplier(member_id, store_id, multipliers):
    """The product of the factors of ``multipliers`` (from ``active_multipliers``) that apply
    to this member at this store: the member must be in the campaign's TEST group, and earns
    by the factor of their variant. One query
    on the (member, campaign) index, none at all when no multiplier covers the store."""
    candidates = {
        m.campaign_id: m for m in multipliers if m.store_ids is None or store_id in m.store_ids
    }
    if not candidates or member_id is None:
        return Decimal(1)
    factor = Decimal(1)
    for campaign_id, variant in CampaignRecipient.objects.filter(
        member_id=member_id,
        campaign_id__in=sorted(candidates),
        group=CampaignRecipient.Group.TEST,
    ).values_list("campaign_id", "variant"):
        factors = candidates[campaign_id].factors
        factor *= factors.get(variant, factors[1])
    return factor


# --- The member page --------------------------------------------------------------------------


def member_campaigns(member, limit=10):
    """The campaigns a member was targeted by, newest first, with the group (one query)."""
    return list(
        CampaignRecipient.objects.filter(member=member)
        .select_related("campaign")
        .only("group", "created_at", "campaign__id", "campaign__name", "campaign__kind")
        .order_by("-created_at", "-id")[:limit]
    )


def campaign_list():
    return Campaign.objects.select_related("segment").order_by("-created_at", "-id")


# --- Results against the control group ----------------------------------------------------------

Z95 = NormalDist().inv_cdf(0.975)

RESULTS_SQL = """
SELECT r.grp,
       COUNT(*),
       COUNT(p.member_id),
       COALESCE(SUM(p.revenue), 0),
       COALESCE(SUM(p.revenue * p.revenue), 0),
       COALESCE(SUM(p.purchases), 0),
       COALESCE(SUM(p.redeemed), 0)
FROM campaigns_campaignrecipient r
LEFT JOIN (
    SELECT pu.member_id, SUM(pu.amount - pu.refunded_amount) AS revenue,
           COUNT(*) AS purchases, SUM(pu.redeemed_points) AS redeemed
    FROM loyalty_purchase pu
    JOIN campaigns_campaignrecipient rr
      ON rr.member_id = pu.member_id AND rr.campaign_id = %s
    WHERE pu.occurred_at >= %s AND pu.occurred_at < %s
    GROUP BY pu.member_id
) p ON p.member_id = r.member_id
WHERE r.campaign_id = %s
GROUP BY r.grp
"""


def results_window(campaign):
    start = campaign.starts_at if campaign.kind == Campaign.Kind.MULTIPLIER else None
    start = start or campaign.sent_at
    if start is None:
        return None, None
    return start, start + timedelta(days=campaign.results_days)


def group_figures(campaign):
    """Per group: members, buyers, revenue (sum and sum of squares per member), purchases and
    points redeemed in the results window. One statement."""
    start, end = results_window(campaign)
    empty = {"members": 0, "buyers": 0, "revenue": Decimal(0), "revenue_sq": Decimal(0)}
    groups = CampaignRecipient.Group.values
    figures = {group: dict(empty, purchases=0, redeemed=0) for group in groups}
    if start is None:
        return figures, start, end
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(RESULTS_SQL, [campaign.pk, adapt(start), adapt(end), campaign.pk])
        for group, members, buyers, revenue, revenue_sq, purchases, redeemed in cursor.fetchall():
            figures[group] = {
                "members": members,
                "buyers": buyers,
                "revenue": Decimal(str(revenue)),
                "revenue_sq": Decimal(str(revenue_sq)),
                "purchases": int(purchases),
                "redeemed": int(redeemed),
            }
    return figures, start, end


def two_proportions(x1, n1, x2, n2):
    """Difference of two shares (test − control) with its 95% confidence interval (unpooled
    standard error) and the two-sided p-value of the pooled two-proportion z-test."""
    if not n1 or not n2:
        return None
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = 2 * (1 - NormalDist().cdf(abs(diff) / se_pooled)) if se_pooled else 1.0
    return {"diff": diff, "low": diff - Z95 * se, "high": diff + Z95 * se, "p_value": p_value}


def welch(sum1, sq1, n1, sum2, sq2, n2):
    """Difference of two means (test − control) from sums and sums of squares: Welch's t test
    (unequal variances, Welch–Satterthwaite degrees of freedom), the two-sided p-value and the
    95% interval from Student's t, as ``scipy.stats.ttest_ind(equal_var=False)`` gives them."""
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = sum1 / n1, sum2 / n2
    v1 = max(0.0, (sq1 - sum1 * sum1 / n1) / (n1 - 1))
    v2 = max(0.0, (sq2 - sum2 * sum2 / n2) / (n2 - 1))
    diff = m1 - m2
    a, b = v1 / n1, v2 / n2
    se = math.sqrt(a + b)
    if not se:
        return {"diff": diff, "low": diff, "high": diff, "p_value": 1.0, "t": None, "df": None}
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    t = diff / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    margin = float(stats.t.ppf(0.975, df)) * se
    return {"diff": diff, "low": diff - margin, "high": diff + margin, "p_value": p_value,
            "t": t, "df": df}  # fmt: skip


def campaign_results(campaign):
    """Test against control in the results window: members, conversion (share who bought),
    revenue per member, average check, points redeemed; the differences with a 95% confidence
    interval and p-value (two-proportion z-test; Welch test for revenue per member)."""
    figures, start, end = group_figures(campaign)
    rows = {}
    for group, f in figures.items():
        n = f["members"]
        rows[group] = {
            "members": n,
            "buyers": f["buyers"],
            "conversion": f["buyers"] / n if n else None,
            "revenue": money(f["revenue"]),
            "revenue_per_member": money(f["revenue"] / n) if n else None,
            "average_check": money(f["revenue"] / f["purchases"]) if f["purchases"] else None,
            "purchases": f["purchases"],
            "redeemed": f["redeemed"],
        }
    test, control = figures["test"], figures["control"]
    conversion = two_proportions(
        test["buyers"], test["members"], control["buyers"], control["members"]
    )
    revenue = welch(
        float(test["revenue"]),
        float(test["revenue_sq"]),
        test["members"],
        float(control["revenue"]),
        float(control["revenue_sq"]),
        control["members"],
    )
    for row in rows.values():
        row["conversion_pct"] = row["conversion"] * 100 if row["conversion"] is not None else None
    for stat in (conversion, revenue):
        if stat is not None:
            stat["significant"] = stat["p_value"] < 0.05
    if conversion is not None:
        for key in ("diff", "low", "high"):
            conversion[f"{key}_pct"] = conversion[key] * 100
    labels = CampaignRecipient.Group
    return {
        "start": start,
        "end": end,
        "rows": [(labels.TEST.label, rows["test"]), (labels.CONTROL.label, rows["control"])],
        "test": rows["test"],
        "control": rows["control"],
        "conversion": conversion,
        "revenue": revenue,
    }

"""Reads of the campaigns app: the engine's multipliers and campaign results (segments:
members/segments.py)."""

import math
from collections import namedtuple
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import NormalDist

from django.db import connection
from django.db.models import Case, CharField, Count, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Cast, Concat
from django.utils.translation import gettext
from scipy import stats

from analytics.models import ProgramEconomics
from campaigns.models import Campaign, CampaignRecipient, CampaignVariant
from loyalty.engine.money import money, roi_pct
from loyalty.engine.pricing import tier_discount_of_purchase
from loyalty.models import Purchase
from loyalty.models.program import ProgramSettings, cached_rule, clear_rules_cache

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
    """Campaigns, newest first; a win-back's daily runs are read on the win-back's page."""
    campaigns = Campaign.objects.filter(parent__isnull=True).select_related("segment")
    return campaigns.order_by("-created_at", "-id")


# --- Results against the control group ----------------------------------------------------------

Z95 = NormalDist().inv_cdf(0.975)

# Each statement reads the recipients of the campaign and, of a win-back, of its daily runs
# ("id = %s OR parent_id = %s").
#
# Per arm (0: control, else the variant): members, buyers, revenue and its sum of squares per
# member, purchases, points redeemed and the discounts of the campaign's own coupons, from each
# recipient's purchases in its campaign's results window (``_purchases_per_recipient``; a
# member targeted by two runs of a win-back counts twice).
RESULTS_SQL = """
SELECT CASE WHEN r.grp = 'control' THEN 0 ELSE r.variant END AS arm,
       COUNT(*),
       COUNT(p.recipient_id),
       COALESCE(SUM(p.revenue), 0),
       COALESCE(SUM(p.revenue * p.revenue), 0),
       COALESCE(SUM(p.purchases), 0),
       COALESCE(SUM(p.redeemed), 0),
       COALESCE(SUM(p.coupon_discounts), 0)
FROM campaigns_campaignrecipient r
LEFT JOIN ({purchases}) p ON p.recipient_id = r.id
WHERE r.campaign_id IN (SELECT id FROM campaigns_campaign WHERE id = %s OR parent_id = %s)
GROUP BY CASE WHEN r.grp = 'control' THEN 0 ELSE r.variant END
"""


def _purchases_per_recipient(campaign):
    """Per recipient of the campaign (and of a win-back's runs): revenue net of refunds,
    purchases, points redeemed and the part of their discounts that was the campaign's own
    coupon's (the discount less the tier's share, ``pricing.tier_discount_of_purchase``), in
    the recipient's campaign's results window."""
    recipient = "member__campaign_recipients"
    own_coupon = Q(
        coupon_code__startswith=Concat(
            Value("C"), Cast(f"{recipient}__campaign_id", CharField()), Value("-")
        )
    )
    coupon_part = Case(
        When(own_coupon, then=F("discount_amount") - tier_discount_of_purchase()),
        default=Value(Decimal("0.00")),
        output_field=DecimalField(max_digits=12, decimal_places=2),
    )
    campaigns = Campaign.objects.filter(Q(pk=campaign.pk) | Q(parent_id=campaign.pk))
    # One filter() call: every condition is on the same recipient row.
    in_window = Purchase.objects.filter(
        **{f"{recipient}__campaign_id__in": campaigns.values("id")},
        occurred_at__gte=F(f"{recipient}__campaign__results_from"),
        occurred_at__lt=F(f"{recipient}__campaign__results_until"),
    )
    return (
        in_window.values(recipient_id=F(f"{recipient}__id"))
        .annotate(
            revenue=Sum(F("amount") - F("refunded_amount")),
            purchases=Count("id"),
            redeemed=Sum("redeemed_points"),
            coupon_discounts=Sum(coupon_part),
        )
        .order_by()
    )


# Bonus points each variant granted: the lots of the send's batches (campaigns.services).
GRANTED_SQL = """
SELECT r.variant, COALESCE(SUM(l.points), 0)
FROM campaigns_campaignrecipient r
JOIN loyalty_pointslot l ON l.batch = r.batch AND l.member_id = r.member_id
WHERE r.campaign_id IN (SELECT id FROM campaigns_campaign WHERE id = %s OR parent_id = %s)
  AND r.grp = 'test'
GROUP BY r.variant
"""

# Messages sent per variant and channel: the outbox row of each recipient's campaign message
# (its key, as campaigns.services writes it) and the messages delivered from it.
MESSAGES_SQL = """
SELECT r.variant, msg.channel, COUNT(*)
FROM campaigns_campaignrecipient r
JOIN messaging_outbox o ON o.key = 'campaign:' || CAST(r.campaign_id AS TEXT) || ':'
                                 || CAST(r.member_id AS TEXT)
JOIN messaging_message msg ON msg.outbox_id = o.id AND msg.status = 'sent'
WHERE r.campaign_id IN (SELECT id FROM campaigns_campaign WHERE id = %s OR parent_id = %s)
  AND r.grp = 'test'
GROUP BY r.variant, msg.channel
"""


def group_figures(campaign, arms):
    """Per arm (0: control, else the variant's number): members, buyers, revenue (sum and
    sum of squares per member), purchases, points redeemed and coupon discounts in the results
    window (a win-back: each run's). One statement."""
    start, end = campaign.results_window()
    empty = {
        "members": 0,
        "buyers": 0,
        "revenue": Decimal(0),
        "revenue_sq": Decimal(0),
        "purchases": 0,
        "redeemed": 0,
        "coupon_discounts": Decimal(0),
    }
    figures = {arm: dict(empty) for arm in arms}
    if start is None:
        return figures, start, end
    purchases, params = _purchases_per_recipient(campaign).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(RESULTS_SQL.format(purchases=purchases), [*params, campaign.pk, campaign.pk])
        for (
            arm,
            members,
            buyers,
            revenue,
            revenue_sq,
            purchases,
            redeemed,
            coupons,
        ) in cursor.fetchall():
            figures[arm] = {
                "members": members,
                "buyers": buyers,
                "revenue": Decimal(str(revenue)),
                "revenue_sq": Decimal(str(revenue_sq)),
                "purchases": int(purchases),
                "redeemed": int(redeemed),
                "coupon_discounts": money(Decimal(str(coupons))),
            }
    return figures, start, end


@dataclass
class VariantCost:
    """What a variant cost: its bonus points at the point value, the discounts its coupons
    gave in the results window, and its messages sent at the price of their channel."""

    points: int = 0
    points_cost: Decimal = Decimal("0.00")
    coupon_discounts: Decimal = Decimal("0.00")
    messages: dict = field(default_factory=dict)  # channel -> sent
    messages_cost: Decimal = Decimal("0.00")

    @property
    def sent(self):
        return sum(self.messages.values())

    @property
    def total(self):
        return self.points_cost + self.coupon_discounts + self.messages_cost


def variant_costs(campaign, figures, economics, point_value):
    """{variant number: VariantCost}; two statements (points only for a bonus campaign)."""
    costs = {arm: VariantCost(coupon_discounts=f["coupon_discounts"]) for arm, f in figures.items()}
    with connection.cursor() as cursor:
        if campaign.kind == Campaign.Kind.BONUS_POINTS:
            cursor.execute(GRANTED_SQL, [campaign.pk, campaign.pk])
            for variant, points in cursor.fetchall():
                cost = costs.setdefault(variant, VariantCost())
                cost.points = int(points)
                cost.points_cost = money(int(points) * point_value)
        cursor.execute(MESSAGES_SQL, [campaign.pk, campaign.pk])
        for variant, channel, sent in cursor.fetchall():
            cost = costs.setdefault(variant, VariantCost())
            cost.messages[channel] = sent
            cost.messages_cost += money(economics.message_price(channel) * sent)
    costs.pop(0, None)  # the control group is given nothing
    return costs


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


def _row(label, f):
    n = f["members"]
    conversion = f["buyers"] / n if n else None
    return {
        "label": str(label),
        "members": n,
        "buyers": f["buyers"],
        "conversion": conversion,
        "conversion_pct": conversion * 100 if conversion is not None else None,
        "revenue": money(f["revenue"]),
        "revenue_per_member": money(f["revenue"] / n) if n else None,
        "average_check": money(f["revenue"] / f["purchases"]) if f["purchases"] else None,
        "purchases": f["purchases"],
        "redeemed": f["redeemed"],
    }


def _against_control(f, control):
    """The two statistics of a variant against control, each marked significant at 5%."""
    conversion = two_proportions(f["buyers"], f["members"], control["buyers"], control["members"])
    revenue = welch(
        float(f["revenue"]),
        float(f["revenue_sq"]),
        f["members"],
        float(control["revenue"]),
        float(control["revenue_sq"]),
        control["members"],
    )
    for stat in (conversion, revenue):
        if stat is not None:
            stat["significant"] = stat["p_value"] < 0.05
    if conversion is not None:
        for key in ("diff", "low", "high"):
            conversion[f"{key}_pct"] = conversion[key] * 100
    return conversion, revenue


def variant_label(number, count):
    """ "Test" for a campaign with one offer, else "Variant 2" and so on."""
    if count == 1:
        return CampaignRecipient.Group.TEST.label
    return gettext("Variant %(number)s") % {"number": number}


def campaign_results(campaign):
    """Each variant against the control group in the results window: members, conversion
    (share who bought), revenue per member, average check, points redeemed; the differences
    with a 95% confidence interval and p-value (two-proportion z-test; Welch test for revenue
    per member); the variant's cost and ROI: the extra revenue per member over control × its
    members × the gross margin, less the cost, over the cost. Five statements at most."""
    offers = campaign.offers()
    figures, start, end = group_figures(campaign, [0, *(offer.number for offer in offers)])
    economics = ProgramEconomics.load()
    point_value = ProgramSettings.cached().point_value
    costs = variant_costs(campaign, figures, economics, point_value)
    control = figures[0]
    control_row = _row(CampaignRecipient.Group.CONTROL.label, control)
    variants = []
    for offer in offers:
        f = figures[offer.number]
        conversion, revenue = _against_control(f, control)
        cost = costs.get(offer.number, VariantCost())
        extra = margin = None
        if f["members"] and control["members"]:
            extra = money(
                (f["revenue"] / f["members"] - control["revenue"] / control["members"])
                * f["members"]
            )
            margin = money(economics.margin_on(extra))
        variants.append(
            {
                "number": offer.number,
                "offer": offer,
                "row": _row(variant_label(offer.number, len(offers)), f),
                "conversion": conversion,
                "revenue": revenue,
                "cost": cost,
                "extra_revenue": extra,
                "extra_margin": margin,
                "roi_pct": roi_pct(margin, cost.total),
            }
        )
    first = variants[0]
    return {
        "start": start,
        "end": end,
        "rows": [(v["row"]["label"], v["row"]) for v in variants]
        + [(control_row["label"], control_row)],
        "control": control_row,
        "variants": variants,
        # The first variant against control, as a campaign of one offer has it.
        "test": first["row"],
        "conversion": first["conversion"],
        "revenue": first["revenue"],
        "economics": economics,
        "point_value": point_value,
    }

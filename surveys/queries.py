"""NPS figures with their confidence intervals, and the complaint queue."""

import math

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncMonth
from django.utils import timezone

from campaigns.models import CampaignRecipient
from loyalty.models import Channel, Tier
from surveys.models import Complaint, NpsGroup, SurveyResponse

Z95 = 1.96


def nps_figures(promoters, passives, detractors):
    """NPS = %promoters − %detractors, with a 95% confidence interval.

    Each answer scores +1, 0 or −1; NPS is 100 × their mean, so its standard error is
    100 × sqrt((p + d − (p − d)²) / n) for shares p of promoters and d of detractors.
    """
    n = promoters + passives + detractors
    if n == 0:
        return {
            "n": 0,
            "promoters": 0,
            "passives": 0,
            "detractors": 0,
            "nps": None,
            "low": None,
            "high": None,
            "promoter_pct": 0,
            "passive_pct": 0,
            "detractor_pct": 0,
        }
    p, d = promoters / n, detractors / n
    nps = 100 * (p - d)
    margin = 100 * Z95 * math.sqrt(max(0.0, p + d - (p - d) ** 2) / n)
    return {
        "n": n,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "nps": round(nps, 1),
        "low": round(max(-100.0, nps - margin), 1),
        "high": round(min(100.0, nps + margin), 1),
        "promoter_pct": round(100 * p, 1),
        "passive_pct": round(100 * passives / n, 1),
        "detractor_pct": round(100 * d, 1),
    }


GROUP_COUNTS = {
    "promoters": Count("id", filter=Q(group=NpsGroup.PROMOTER)),
    "passives": Count("id", filter=Q(group=NpsGroup.PASSIVE)),
    "detractors": Count("id", filter=Q(group=NpsGroup.DETRACTOR)),
}


def nps_responses(since=None, until=None, stores=None):
    responses = SurveyResponse.objects.filter(survey__kind="nps", score__isnull=False)
    if since:
        responses = responses.filter(answered_at__gte=since)
    if until:
        responses = responses.filter(answered_at__lt=until)
    if stores is not None:
        responses = responses.filter(store__in=stores)
    return responses


def nps_summary(responses):
    return nps_figures(**responses.aggregate(**GROUP_COUNTS))


# dimension: (key, the columns its label is made of, the order of the rows)
BREAKDOWNS = {
    "store": ("store__code", ("store__name",), "store__code"),
    "tier": ("tier__code", ("tier__name", "tier__name_ru", "tier__threshold"), "tier__threshold"),
    "channel": ("channel", (), "channel"),
}


def _breakdown_label(dimension, row):
    """The row's name in the page's language: a tier by its name per language, a channel by its
    translated label, a store by its name."""
    if dimension == "tier":
        if row["tier__code"] is None:
            return "—"
        return Tier(name=row["tier__name"], name_ru=row["tier__name_ru"]).display_name()
    if dimension == "channel":
        return Channel(row["channel"]).label if row["channel"] in Channel.values else "—"
    return row["store__name"] or "—"


def nps_by(responses, dimension):
    """NPS per store, tier or channel: one grouped query."""
    key, names, order = BREAKDOWNS[dimension]
    rows = responses.values(key, *names).annotate(**GROUP_COUNTS).order_by(order)
    return [
        {
            "key": row[key] or "",
            "label": _breakdown_label(dimension, row),
            **nps_figures(row["promoters"], row["passives"], row["detractors"]),
        }
        for row in rows
    ]


def nps_by_month(responses):
    rows = (
        responses.annotate(month=TruncMonth("answered_at"))
        .values("month")
        .annotate(**GROUP_COUNTS)
        .order_by("month")
    )
    return [
        {"month": row["month"], **nps_figures(row["promoters"], row["passives"], row["detractors"])}
        for row in rows
    ]


def nps_by_campaign(campaign_id):
    """NPS with its confidence interval per group of a campaign (a win-back: of all its runs),
    from the answers to its end-of-campaign survey: {0: control, 1: variant 1, ...}. One
    grouped query."""
    arm = CampaignRecipient.objects.filter(
        campaign_id=OuterRef("invitation__campaign_id"), member_id=OuterRef("member_id")
    ).values("variant")[:1]
    rows = (
        nps_responses()
        .filter(
            Q(invitation__campaign_id=campaign_id) | Q(invitation__campaign__parent_id=campaign_id)
        )
        .annotate(arm=Subquery(arm))
        .values("arm")
        .annotate(**GROUP_COUNTS)
        .order_by("arm")
    )
    return {
        row["arm"]: nps_figures(row["promoters"], row["passives"], row["detractors"])
        for row in rows
    }


def complaint_queue(user):
    """The cases the user may work (their stores' unless they see every store), soonest due
    first; complaint_list narrows it with ComplaintFilterSet."""
    from members.queries import sees_all_stores

    cases = Complaint.objects.select_related("member", "category", "assignee", "store")
    if not sees_all_stores(user):
        cases = cases.filter(store__in=user.stores.all())
    return cases.order_by("due_at", "id")


def is_overdue(complaint, now=None):
    return complaint.is_open and complaint.due_at < (now or timezone.now())

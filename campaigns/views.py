"""Segment and campaign pages: a live count while building a segment, a send with a live
progress bar, and the results against the control group."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from campaigns import queries
from campaigns.forms import (
    CampaignForm,
    CouponFilterForm,
    CouponSeriesForm,
    ScheduleForm,
    SegmentForm,
)
from campaigns.models import Campaign, Segment
from campaigns.services import (
    cancel_campaign,
    save_campaign,
    save_segment,
    schedule_campaign,
    send_now,
)
from campaigns.tasks import start_soon
from loyalty.engine.coupons import issue_general_coupons
from loyalty.engine.errors import LoyaltyError
from loyalty.models import Coupon
from loyalty.web.access import is_fragment, require
from loyalty.web.shortcuts import stream_csv
from members import segments
from surveys.queries import nps_by_campaign, nps_figures

PERMISSION = "loyalty.manage_campaigns"


@require(PERMISSION)
def segment_list(request):
    segments = Segment.objects.annotate(campaign_count=Count("campaigns")).order_by("name", "id")
    page = Paginator(segments, 50).get_page(request.GET.get("page"))
    return render(request, "campaigns/segment_list.html", {"page": page})


@require(PERMISSION)
def segment_edit(request, pk=None):
    """Build or change a segment; every change of a criterion re-counts its members (htmx)."""
    segment = get_object_or_404(Segment, pk=pk) if pk else None
    if is_fragment(request) and request.method == "GET":
        form = SegmentForm(request.GET, count_only=True)
        count = segments.segment_count(form.definition()) if form.is_valid() else None
        return render(request, "campaigns/segment_form.html#count", {"count": count})
    if request.method == "POST":
        form = SegmentForm(request.POST)
        if form.is_valid():
            save_segment(
                segment_id=segment.pk if segment else None,
                name=form.cleaned_data["name"],
                definition=form.definition(),
                staff=request.user,
            )
            messages.success(request, _("Segment saved."))
            return redirect("campaigns:segment-list")
        count = None
        status = 422
        snapshot = segments.purchase_snapshot()
    else:
        form = SegmentForm(initial=SegmentForm.initial_from(segment) if segment else None)
        # Read once: the page states the date of the purchase figures the count is made of.
        snapshot = segments.purchase_snapshot()
        count = segments.segment_count(segment.definition if segment else {}, snapshot=snapshot)
        status = 200
    return render(
        request,
        "campaigns/segment_form.html",
        {"form": form, "segment": segment, "count": count, "snapshot": snapshot},
        status=status,
    )


@require(PERMISSION)
def campaign_list(request):
    page = Paginator(queries.campaign_list(), 25).get_page(request.GET.get("page"))
    return render(request, "campaigns/campaign_list.html", {"page": page})


@require(PERMISSION)
def campaign_edit(request, pk=None):
    campaign = get_object_or_404(Campaign, pk=pk) if pk else Campaign()
    if pk and not campaign.is_editable:
        messages.error(request, _("This campaign has already been sent or cancelled."))
        return redirect("campaigns:campaign-detail", pk=campaign.pk)
    initial = {}
    if not pk and request.GET.get("segment", "").isdigit():
        initial["segment"] = int(request.GET["segment"])
    form = CampaignForm(request.POST or None, instance=campaign, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                saved = save_campaign(form=form, staff=request.user)
            except LoyaltyError as error:
                form.add_error(None, str(error.message))
            else:
                messages.success(request, _("Campaign saved."))
                return redirect("campaigns:campaign-detail", pk=saved.pk)
        status = 422
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "campaign": campaign if pk else None},
        status=status,
    )


def _detail_context(campaign, schedule_form=None):
    context = {
        "campaign": campaign,
        "offers": campaign.offers(),
        "runs": campaign.runs.count() if campaign.lapsed_days else None,
        "schedule_form": schedule_form
        or ScheduleForm(
            initial={"scheduled_at": timezone.localtime(campaign.scheduled_at or timezone.now())}
        ),
    }
    if campaign.sent_at is not None:
        context["results"] = results = _results(campaign)
        context["charts"] = _results_charts(results)
    return context


def _results(campaign):
    """The campaign's results, and with an end-of-campaign survey each group's NPS
    (``nps``: the figures of surveys.queries.nps_figures, None without a survey)."""
    results = queries.campaign_results(campaign)
    nps = nps_by_campaign(campaign.pk) if campaign.survey_at_end else {}
    none = nps_figures(0, 0, 0) if campaign.survey_at_end else None
    for variant in results["variants"]:
        variant["nps"] = nps.get(variant["number"], none)
    results["control_nps"] = nps.get(0, none)
    return results


@require(PERMISSION)
def campaign_detail(request, pk):
    campaign = get_object_or_404(
        Campaign.objects.select_related("segment").prefetch_related("variants"), pk=pk
    )
    if is_fragment(request):
        response = render(
            request, "campaigns/campaign_detail.html#progress", {"campaign": campaign}
        )
        if request.GET.get("poll") and campaign.status in (
            Campaign.Status.DONE,
            Campaign.Status.CANCELLED,
        ):
            # The send has ended: reload the page once, to show its results.
            response["HX-Refresh"] = "true"
        return response
    return render(request, "campaigns/campaign_detail.html", _detail_context(campaign))


@require(PERMISSION)
@require_POST
def campaign_send(request, pk):
    """Send now, or schedule for a time (the send_campaigns job starts it then)."""
    campaign = get_object_or_404(
        Campaign.objects.select_related("segment").prefetch_related("variants"), pk=pk
    )
    form = None
    try:
        if request.POST.get("action") == "schedule":
            form = ScheduleForm(request.POST)
            if form.is_valid():
                schedule_campaign(
                    campaign_id=pk, when=form.cleaned_data["scheduled_at"], staff=request.user
                )
                messages.success(request, _("Campaign scheduled."))
                return redirect("campaigns:campaign-detail", pk=pk)
        else:
            now = timezone.now()
            send_now(campaign_id=pk, staff=request.user, now=now)
            start_soon(pk, now)  # send_now is durable: committed by now
            messages.success(request, _("Sending started."))
            return redirect("campaigns:campaign-detail", pk=pk)
    except LoyaltyError as error:
        form = form or ScheduleForm(request.POST)
        form.is_valid()
        form.add_error(None, str(error.message))
    return render(
        request, "campaigns/campaign_detail.html", _detail_context(campaign, form), status=422
    )


@require(PERMISSION)
@require_POST
def campaign_cancel(request, pk):
    get_object_or_404(Campaign, pk=pk)
    try:
        cancel_campaign(campaign_id=pk, staff=request.user)
        messages.success(request, _("Campaign cancelled."))
    except LoyaltyError as error:
        messages.error(request, str(error.message))
    return redirect("campaigns:campaign-detail", pk=pk)


def _number(value, digits=4):
    return "" if value is None else f"{value:.{digits}f}"


def _blank(value):
    return "" if value is None else value


RESULTS_HEADER = [
    "group",
    "variant",
    "members",
    "buyers",
    "conversion",
    "revenue",
    "revenue_per_member",
    "purchases",
    "average_check",
    "points_redeemed",
    "conversion_diff",
    "conversion_ci95_low",
    "conversion_ci95_high",
    "conversion_p_value",
    "revenue_per_member_diff",
    "revenue_per_member_ci95_low",
    "revenue_per_member_ci95_high",
    "revenue_per_member_p_value",
    "points_granted",
    "points_cost",
    "coupon_discounts",
    "messages",
    "messages_cost",
    "cost",
    "extra_revenue",
    "extra_margin",
    "roi_pct",
    "nps_answers",
    "nps",
    "nps_ci95_low",
    "nps_ci95_high",
]


def _figures(row):
    return [
        row["members"],
        row["buyers"],
        _number(row["conversion"]),
        row["revenue"],
        _blank(row["revenue_per_member"]),
        row["purchases"],
        _blank(row["average_check"]),
        row["redeemed"],
    ]


def _statistic(stat):
    if stat is None:
        return ["", "", "", ""]
    return [_number(stat[key]) for key in ("diff", "low", "high", "p_value")]


def _nps(figures):
    if figures is None:
        return ["", "", "", ""]
    return [figures["n"], *(_blank(figures[key]) for key in ("nps", "low", "high"))]


def _result_lines(results):
    """The results table as CSV rows: each variant with its comparison with control, its cost
    and ROI, then the control group."""
    for variant in results["variants"]:
        cost = variant["cost"]
        yield [
            "test",
            variant["number"],
            *_figures(variant["row"]),
            *_statistic(variant["conversion"]),
            *_statistic(variant["revenue"]),
            cost.points,
            cost.points_cost,
            cost.coupon_discounts,
            cost.sent,
            cost.messages_cost,
            cost.total,
            _blank(variant["extra_revenue"]),
            _blank(variant["extra_margin"]),
            _blank(variant["roi_pct"]),
            *_nps(variant["nps"]),
        ]
    yield ["control", 0, *_figures(results["control"]), *[""] * 17, *_nps(results["control_nps"])]


@require(PERMISSION)
def campaign_results_csv(request, pk):
    """The results table as CSV: one row per variant (against control), then the control group."""
    campaign = get_object_or_404(Campaign.objects.prefetch_related("variants"), pk=pk)
    results = _results(campaign)
    return stream_csv(f"campaign-{campaign.pk}-results.csv", RESULTS_HEADER, _result_lines(results))


def _series(label, data, color):
    return {
        "label": str(label),
        "data": [None if value is None else float(value) for value in data],
        "color": color,
    }


def _results_charts(results):
    """Conversion and revenue per member of control and each variant (report-charts.js)."""
    rows = [row for _label, row in results["rows"]]
    labels = [str(label) for label, _row in results["rows"]]
    return [
        {
            "id": "campaign-conversion",
            "type": "bar",
            "labels": labels,
            "datasets": [
                _series(_("Share who bought, %"), [r["conversion_pct"] for r in rows], "#1565c0")
            ],
        },
        {
            "id": "campaign-revenue",
            "type": "bar",
            "labels": labels,
            "datasets": [
                _series(_("Revenue per member"), [r["revenue_per_member"] for r in rows], "#2e7d32")
            ],
        },
    ]


# --- General coupons ----------------------------------------------------------------------------


def _general_coupons(request):
    """General coupons (no member) newest first, and the filter form: by the start of the code."""
    coupons = Coupon.objects.filter(member__isnull=True).order_by("-created_at", "-id")
    filters = CouponFilterForm(request.GET or None)
    prefix = filters.cleaned_data["prefix"].strip() if filters.is_valid() else ""
    if prefix:
        coupons = coupons.filter(code__istartswith=prefix)
    return coupons, filters, prefix


@require(PERMISSION)
def coupon_list(request):
    form = CouponSeriesForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        unique = data["mode"] == CouponSeriesForm.UNIQUE
        try:
            issued = issue_general_coupons(
                terms=form.terms(),
                staff=request.user,
                code="" if unique else data["code"],
                max_uses=None if unique else data.get("max_uses"),
                count=data["count"] if unique else 0,
                prefix=data["prefix"] if unique else "",
            )
        except LoyaltyError as error:
            for field, errors in (error.fields or {None: [error.message]}).items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(
                request,
                ngettext("%(count)s coupon issued.", "%(count)s coupons issued.", len(issued))
                % {"count": len(issued)},
            )
            prefix = f"{data['prefix']}-" if unique else data["code"]
            return redirect(f"{reverse('campaigns:coupon-list')}?{urlencode({'prefix': prefix})}")
    coupons, filters, prefix = _general_coupons(request)
    page = Paginator(coupons, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/coupon_list.html",
        {"form": form, "filters": filters, "page": page, "prefix": prefix},
    )


COUPON_HEADER = ["code", "kind", "value", "sku", "min_amount", "valid_from", "valid_until"]
COUPON_HEADER += ["max_uses", "uses", "is_active"]


@require(PERMISSION)
def coupon_export(request):
    """The codes of the list as filtered (a series: its prefix), for printing or a mailing."""
    coupons, _filters, prefix = _general_coupons(request)
    rows = coupons.values_list(*COUPON_HEADER).iterator(chunk_size=2000)
    name = f"coupons-{prefix.strip('-') or 'all'}.csv"
    return stream_csv(name, COUPON_HEADER, rows)

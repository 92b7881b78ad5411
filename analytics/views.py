"""The analytics dashboard ("does the program pay off?") and its CSV exports.

Both read only the tables the ``refresh_analytics`` job builds (analytics.queries), from the
replica when there is one. A store manager sees the stores they manage; asking for another
store's figures answers 404, as if it did not exist.
"""

import csv
from datetime import timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import jobs, liability, queries, roi
from analytics.models import PERIODS, KpiTarget, ProgramEconomics
from loyalty.engine.db import replica_reads
from loyalty.models import ProgramSettings
from loyalty.web.access import require
from loyalty.web.shortcuts import stream_csv
from members.queries import sees_all_stores, stores_for


def _scope(request):
    """(stores the user may choose, the chosen store or None, store ids to keep or None)."""
    allowed = list(stores_for(request.user).order_by("code"))
    code = request.GET.get("store", "")
    if code:
        chosen = next((store for store in allowed if store.code == code), None)
        if chosen is None:
            raise Http404
        return allowed, chosen, [chosen.pk]
    if sees_all_stores(request.user):
        return allowed, None, None
    return allowed, None, [store.pk for store in allowed]


@require("loyalty.view_analytics")
def dashboard(request):
    with replica_reads():
        days = queries.period_days(request.GET.get("days"))
        allowed, chosen, store_ids = _scope(request)
        snapshot = queries.latest_snapshot()
        context = {
            "days": days,
            "periods": PERIODS,
            "stores": allowed,
            "store": chosen,
            "snapshot": snapshot,
        }
        if snapshot is not None:
            data = queries.dashboard(snapshot, days, store_ids)
            context.update(data)
            context["chart"] = _chart(data["series"])
            context["cohort_columns"] = range(
                max((len(row["months"]) for row in data["cohorts"]), default=0)
            )
        return render(request, "analytics/dashboard.html", context)


def _chart(series):
    """The JSON the page's charts draw (static/js/analytics-charts.js), labels in the locale."""
    return {
        "labels": [formats.date_format(row["day"], "SHORT_DATE_FORMAT") for row in series],
        "revenue": {
            "members": [float(row["member_revenue"]) for row in series],
            "anonymous": [float(row["revenue"] - row["member_revenue"]) for row in series],
            "labels": [_("Members"), _("Anonymous buyers")],
        },
        "points": {
            "issued": [row["points_earned"] + row["points_bonus"] for row in series],
            "redeemed": [row["points_redeemed"] for row in series],
            "expired": [row["points_expired"] for row in series],
            "labels": [_("Issued"), _("Redeemed"), _("Expired")],
        },
    }


EXPORTS = ("figures", "daily", "cohorts", "segments")


@require("loyalty.view_analytics")
def export(request, kind):
    """One table of the dashboard as CSV, for the same period and stores (machine-readable:
    ISO dates, dot decimals, column names in English)."""
    if kind not in EXPORTS:
        raise Http404
    with replica_reads():
        days = queries.period_days(request.GET.get("days"))
        _allowed, chosen, store_ids = _scope(request)
        snapshot = queries.latest_snapshot()
        data = queries.dashboard(snapshot, days, store_ids) if snapshot else None
    scope = chosen.code if chosen else "all"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="analytics-{kind}-{scope}-{days}d.csv"'
    writer = csv.writer(response)
    globals()[f"_write_{kind}"](writer, snapshot, data)
    return response


def _write_figures(writer, snapshot, data):
    writer.writerow(["figure", "value"])
    if data is None:
        return
    window = data["window"]
    writer.writerow(["as_of", snapshot.as_of.isoformat()])
    writer.writerow(["first_day", window.start.isoformat()])
    writer.writerow(["last_day", window.through.isoformat()])
    writer.writerow(["days", window.days])
    for name, value in data["figures"].items():
        writer.writerow([name, "" if value is None else value])


def _write_daily(writer, snapshot, data):
    writer.writerow(["day", *queries.DAILY_FIELDS])
    for row in data["series"] if data else []:
        writer.writerow([row["day"].isoformat(), *(row[name] for name in queries.DAILY_FIELDS)])


def _write_cohorts(writer, snapshot, data):
    writer.writerow(["cohort", "members", "months_since", "buyers", "retention_pct", "revenue"])
    for row in data["cohorts"] if data else []:
        for cell in row["months"]:
            writer.writerow(
                [
                    row["month"].strftime("%Y-%m"),
                    row["size"],
                    cell["months_since"],
                    cell["buyers"],
                    cell["share"],
                    cell["revenue"],
                ]
            )


def _write_segments(writer, snapshot, data):
    writer.writerow(
        [
            "segment",
            "members",
            "share_pct",
            "purchases",
            "revenue",
            "mean_recency_days",
            "expected_purchases_12m_per_member",
            "expected_value_12m_per_member",
            "expected_value_12m_total",
            "p_alive_pct",
        ]
    )
    for row in data["segments"] if data else []:
        writer.writerow(
            [
                row["segment"],
                row["members"],
                row["share"],
                row["purchases"],
                row["revenue"],
                "" if row["recency_days"] is None else row["recency_days"],
                row["expected_purchases"],
                row["expected_value"],
                row["expected_value_total"],
                "" if row["alive"] is None else row["alive"],
            ]
        )


# --- Points liability (roll-forward and IFRS 15) ----------------------------------------------


class LiabilityForm(forms.Form):
    """The months of the report, as an ``<input type="month">`` sends them (YYYY-MM)."""

    first = forms.DateField(
        label=gettext_lazy("From month"),
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    last = forms.DateField(
        label=gettext_lazy("To month"),
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last:
            if first > last:
                self.add_error("last", _("The last month cannot be before the first."))
            elif len(liability.months_between(first, last)) > liability.MAX_MONTHS:
                self.add_error(
                    "last",
                    _("At most %(months)s months at once.") % {"months": liability.MAX_MONTHS},
                )
        return data


def _months_or_default(query):
    """The months asked for, or the last twelve (this one included)."""
    if {"first", "last"} & set(query):
        return query
    last = liability.month_start(timezone.localdate())
    first = liability.month_start(last - timedelta(days=335))
    return {"first": first.strftime("%Y-%m"), "last": last.strftime("%Y-%m")}


def _liability_report(request):
    """(form, report or None): the months asked for, by default the last twelve."""
    form = LiabilityForm(_months_or_default(request.GET))
    if not form.is_valid():
        return form, None
    program = ProgramSettings.load()
    with replica_reads():
        months = liability.roll_forward(
            form.cleaned_data["first"], form.cleaned_data["last"], program.point_value
        )
        breakage = liability.expected_breakage(timezone.now())
    return form, {
        "months": months,
        "breakage": breakage,
        "ifrs": liability.ifrs15(months, program.point_value, breakage),
        "point_value": program.point_value,
        "currency": program.currency,
    }


@require("loyalty.view_analytics", "loyalty.all_stores")
def liability_page(request):
    form, report = _liability_report(request)
    issued = [item for item in liability.LINES if item[0] in liability.ISSUED]
    other = [item for item in liability.LINES if item[0] not in liability.ISSUED]
    for row in report["months"] if report else []:
        row.issued_cells = [row.lines[line] for line, _label in issued]
        row.other_cells = [row.lines[line] for line, _label in other]
        row.money_cells = [row.money[line] for line, _label in liability.LINES]
    charts = []
    if report:
        labels = [formats.date_format(row.month, "YEAR_MONTH_FORMAT") for row in report["months"]]
        charts.append(
            {
                "id": "liability-chart",
                "type": "bar",
                "labels": labels,
                "datasets": [
                    _series(_("Issued"), [row.issued for row in report["months"]], "#0172ad"),
                    _series(
                        _("Redeemed"),
                        [-row.lines["redeemed"] for row in report["months"]],
                        "#2e7d32",
                    ),  # fmt: skip
                    _series(
                        _("Expired"), [-row.lines["expired"] for row in report["months"]], "#c62828"
                    ),  # fmt: skip
                    _series(_("Closing"), [row.closing for row in report["months"]], "#6b4fa0"),
                ],
            }
        )
    context = {
        "charts": charts,
        "form": form,
        "report": report,
        "lines": liability.LINES,
        "issued_lines": issued,
        "other_lines": other,
    }
    return render(request, "analytics/liability.html", context)


def errors_response(errors):
    """An export asked with bad parameters: 400 and each field's errors as plain text."""
    return HttpResponse(
        "\n".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()),
        status=400,
        content_type="text/plain; charset=utf-8",
    )


@require("loyalty.view_analytics", "loyalty.all_stores")
def liability_export(request, kind):
    """The roll-forward (points and money per line) or the IFRS 15 table as CSV, for the same
    months: ISO months, dot decimals, column names in English."""
    if kind not in ("rollforward", "ifrs15"):
        raise Http404
    form, report = _liability_report(request)
    if report is None:
        return errors_response(form.errors)
    span = f"{report['months'][0].month:%Y-%m}_{report['months'][-1].month:%Y-%m}"
    if kind == "ifrs15":
        columns = ["opening", "earned", "deferred", "redeemed", "recognised", "breakage", "closing"]
        rows = (
            [f"{row['month']:%Y-%m}", *(row[name] for name in columns)] for row in report["ifrs"]
        )
        header = ["month", *columns, f"breakage_rate={report['breakage'].rate}"]
        return stream_csv(f"ifrs15-{span}.csv", header, rows)
    names = [line for line, _label in liability.LINES]
    header = ["month", "opening", *names, "closing"]
    header += [f"{name}_money" for name in header[1:]]
    rows = (
        [
            f"{row.month:%Y-%m}",
            row.opening,
            *(row.lines[name] for name in names),
            row.closing,
            row.money["opening"],
            *(row.money[name] for name in names),
            row.money["closing"],
        ]
        for row in report["months"]
    )
    return stream_csv(f"points-rollforward-{span}.csv", header, rows)


@require("loyalty.view_analytics", "loyalty.all_stores")
def effect_page(request):
    """Does joining change what customers spend? A difference in differences (analytics.effect)."""
    with replica_reads():
        did, cem, as_of = jobs.stored_effects()
    return render(
        request,
        "analytics/effect.html",
        {"did": did, "cem": cem, "as_of": as_of, "currency": ProgramSettings.load().currency},
    )


# --- Program ROI and KPI targets --------------------------------------------------------------


class EconomicsForm(forms.ModelForm):
    class Meta:
        model = ProgramEconomics
        fields = ["gross_margin_pct", "email_price", "sms_price", "fixed_monthly_cost"]


class TargetForm(forms.ModelForm):
    month = forms.DateField(
        label=gettext_lazy("Month"),
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )

    class Meta:
        model = KpiTarget
        fields = ["month", "active_members", "repeat_rate_pct", "nps", "roi_pct"]

    def validate_unique(self):
        """A month's targets are replaced, not refused as a duplicate (see ``roi_page``)."""


def _roi_report(request):
    form = LiabilityForm(_months_or_default(request.GET))
    allowed = list(stores_for(request.user).order_by("code"))
    code = request.GET.get("store", "")
    store = next((option for option in allowed if option.code == code), None)
    if code and store is None:
        raise Http404
    if not form.is_valid():
        return form, allowed, store, None
    first, last = form.cleaned_data["first"], form.cleaned_data["last"]
    with replica_reads():
        did, cem, _as_of = jobs.stored_effects()
        lift = roi.uplift(did, cem)
        months = roi.roi_by_month(first, last, store_id=store.pk if store else None, lift=lift)
        actuals = roi.kpis(first, last, months) if store is None else None
    return form, allowed, store, {"lift": lift, "months": months, "actuals": actuals}


@require("loyalty.view_analytics", "loyalty.all_stores")
def roi_page(request):
    economics = ProgramEconomics.load()
    economics_form = EconomicsForm(instance=economics, prefix="economics")
    target_form = TargetForm(prefix="target")
    if request.method == "POST":
        if not request.user.has_perm("loyalty.manage_campaigns"):
            raise PermissionDenied
        if "economics-gross_margin_pct" in request.POST:
            economics_form = EconomicsForm(request.POST, instance=economics, prefix="economics")
            if economics_form.is_valid():
                economics_form.save()
                return redirect(request.get_full_path())
        else:
            target_form = TargetForm(request.POST, prefix="target")
            if target_form.is_valid():
                data = target_form.cleaned_data
                KpiTarget.objects.update_or_create(
                    month=data["month"].replace(day=1),
                    defaults={name: data[name] for name in target_form.Meta.fields[1:]},
                )
                return redirect(request.get_full_path())
    form, allowed, store, report = _roi_report(request)
    return render(
        request,
        "analytics/roi.html",
        {
            "form": form,
            "stores": allowed,
            "store": store,
            "report": report,
            "economics": economics,
            "economics_form": economics_form,
            "charts": _roi_charts(report),
            "target_form": target_form,
            "currency": ProgramSettings.load().currency,
        },
    )


@require("loyalty.view_analytics", "loyalty.all_stores")
def roi_export(request):
    """The ROI table as CSV, every input beside the result."""
    form, _allowed, store, report = _roi_report(request)
    if report is None:
        return errors_response(form.errors)
    header = [
        "month", "members", "incremental_revenue", "incremental_margin", "points_redeemed",
        "tier_discounts", "coupon_discounts", "messages_email", "messages_sms", "messages_cost",
        "fixed_cost", "cost", "roi_pct",
    ]  # fmt: skip
    rows = (
        [
            f"{row.month:%Y-%m}",
            row.members,
            _blank(row.incremental_revenue),
            _blank(row.incremental_margin),
            row.points,
            row.tier_discounts,
            row.coupon_discounts,
            row.messages.get("email", 0),
            row.messages.get("sms", 0),
            row.messages_cost,
            row.fixed,
            row.cost,
            _blank(row.roi_pct),
        ]  # fmt: skip
        for row in report["months"]
    )
    return stream_csv(f"roi-{store.code if store else 'all'}.csv", header, rows)


def _blank(value):
    return "" if value is None else value


def _series(label, data, color):
    return {"label": str(label), "data": [float(value) for value in data], "color": color}


def _roi_charts(report):
    if not report:
        return []
    months = report["months"]
    labels = [formats.date_format(row.month, "YEAR_MONTH_FORMAT") for row in months]
    datasets = [_series(_("Cost"), [row.cost for row in months], "#c62828")]
    if report["lift"].per_day is not None:
        datasets.insert(
            0, _series(_("Extra margin"), [row.incremental_margin for row in months], "#2e7d32")
        )
    return [{"id": "roi-chart", "type": "bar", "labels": labels, "datasets": datasets}]


@require("loyalty.view_analytics", "loyalty.all_stores")
def effect_export(request):
    """The effect page's figures as CSV: method, measure, each figure, and the counts used."""
    with replica_reads():
        did, cem, _as_of = jobs.stored_effects()
    rows = [
        ["did", "members_used", did.used],
        ["did", "comparison_buyers", did.comparison],
        *(["did", f"left_out_{reason}", count] for reason, count in did.left_out.items()),
    ]
    for measure in ("spend", "purchases"):
        figure = getattr(did, measure)
        for name in ("members_before", "members_after", "comparison_before",
                     "comparison_after", "effect", "low", "high"):  # fmt: skip
            rows.append(
                ["did", f"{measure}_{name}", "" if figure is None else getattr(figure, name)]
            )
    rows += [
        ["matching", "members", cem.members],
        ["matching", "non_members", cem.non_members],
        ["matching", "members_matched", cem.matched_members],
        ["matching", "strata", cem.strata],
    ]
    for name in ("raw_gap", "matched_gap", "low", "high", "surviving", "share_matched"):
        value = getattr(cem, name)
        rows.append(["matching", name, "" if value is None else value])
    return stream_csv("effect.csv", ["method", "figure", "value"], rows)

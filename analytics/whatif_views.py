"""The what-if page: a proposed change of the rules against today's, over the last 12 months
(``analytics.whatif``), and the comparison as CSV."""

from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics import whatif
from analytics.views import _series, errors_response
from loyalty.engine.db import replica_reads
from loyalty.engine.money import round_to
from loyalty.models import ProgramSettings, Tier
from loyalty.web.access import require
from loyalty.web.shortcuts import stream_csv

HUNDRED = Decimal(100)


def _percent_field(label, initial):
    return forms.DecimalField(
        label=label,
        initial=initial,
        max_digits=6,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(HUNDRED)],
    )


class ProposalForm(forms.Form):
    """Today's rules as the starting values; a field per tier for its threshold and earn rate."""

    expiry_days = forms.IntegerField(
        label=gettext_lazy("Days points stay available"),
        min_value=1,
        max_value=3650,
    )
    cap_pct = _percent_field(gettext_lazy("Largest share of a purchase points may pay, %"), None)

    def __init__(self, data=None, *, program, tiers):
        super().__init__(data)
        self.program = program
        self.tiers = list(tiers)
        self.fields["expiry_days"].initial = program.expiry_days
        self.fields["cap_pct"].initial = round_to(program.max_redeem_share * HUNDRED, 2)
        for index, tier in enumerate(self.tiers):
            name = tier.display_name()
            if index:
                self.fields[f"threshold_{tier.pk}"] = forms.DecimalField(
                    label=_("%(tier)s: qualifying from") % {"tier": name},
                    initial=tier.threshold,
                    min_value=Decimal(0),
                    max_digits=14,
                    decimal_places=2,
                )
            self.fields[f"rate_{tier.pk}"] = _percent_field(
                _("%(tier)s: earn rate, %%") % {"tier": name},
                round_to(tier.earn_rate * HUNDRED, 2),
            )

    def tier_rows(self):
        """(tier, threshold field or None for the lowest, earn rate field) for the template."""
        return [
            (tier, self[f"threshold_{tier.pk}"] if index else None, self[f"rate_{tier.pk}"])
            for index, tier in enumerate(self.tiers)
        ]

    def clean(self):
        data = super().clean()
        previous = Decimal(0)
        for tier in self.tiers[1:]:
            name = f"threshold_{tier.pk}"
            value = data.get(name)
            if value is None:
                continue
            if value <= previous:
                self.add_error(name, _("Each tier must start above the tier below it."))
            previous = value
        return data

    def rules(self):
        data = self.cleaned_data
        steps = []
        for index, tier in enumerate(self.tiers):
            threshold = data[f"threshold_{tier.pk}"] if index else Decimal(0)
            rate = data[f"rate_{tier.pk}"] / HUNDRED
            steps.append(whatif.Step(tier.pk, threshold, rate))
        return whatif.Rules(
            steps=tuple(steps), expiry_days=data["expiry_days"], cap=data["cap_pct"] / HUNDRED
        )


def _compare(request):
    """(form, replay or None): the replay runs only for a submitted, valid proposal."""
    program = ProgramSettings.load()
    tiers = Tier.objects.order_by("threshold")
    submitted = "expiry_days" in request.GET
    form = ProposalForm(request.GET if submitted else None, program=program, tiers=tiers)
    if not submitted or not form.is_valid():
        return form, None
    with replica_reads():
        result = whatif.replay(form.rules(), program=program)
    return form, result


def _figures(result):
    """(key, label, today, proposal, kind) rows of the comparison; kind is points, money or
    share."""
    a, b = result.today, result.proposal
    return [
        ("issued", _("Points issued"), a.issued, b.issued, "points"),
        ("redeemed", _("Points spent"), a.redeemed, b.redeemed, "points"),
        ("expired", _("Points expired"), a.expired, b.expired, "points"),
        ("liability", _("Points left at the end"), a.liability, b.liability, "points"),
        ("liability_value", _("Their value"), a.liability_value, b.liability_value, "money"),
        ("breakage_rate", _("Expected breakage"), a.breakage_rate, b.breakage_rate, "share"),
        (
            "expected_breakage",
            _("Points expected to expire unused"),
            a.expected_breakage,
            b.expected_breakage,
            "points",
        ),
        ("deferred_value", _("Liability net of breakage"), a.deferred_value, b.deferred_value,
         "money"),
        ("shortfall", _("Spent beyond the replayed points"), a.shortfall, b.shortfall, "points"),
    ]  # fmt: skip


def _rows(result, tiers):
    rows = []
    for key, label, today, proposal, kind in _figures(result):
        if kind == "share":  # shown in percent, the difference in percentage points
            today, proposal = (
                None if v is None else round_to(v * HUNDRED, 1) for v in (today, proposal)
            )
        both = today is not None and proposal is not None
        rows.append(
            {
                "key": key,
                "label": label,
                "today": today,
                "proposal": proposal,
                "difference": proposal - today if both else None,
                "kind": kind,
            }
        )
        rows[-1]["values"] = [rows[-1][name] for name in ("today", "proposal", "difference")]
    tier_rows = [
        {
            "tier": tier,
            "today": result.today.tiers.get(tier.pk, 0),
            "proposal": result.proposal.tiers.get(tier.pk, 0),
        }
        for tier in tiers
    ]
    for row in tier_rows:
        row["difference"] = row["proposal"] - row["today"]
    return rows, tier_rows


def _charts(rows, tier_rows):
    points = [row for row in rows if row["key"] in ("issued", "redeemed", "expired", "liability")]
    labels = [str(row["label"]) for row in points]
    tier_labels = [row["tier"].display_name() for row in tier_rows]
    return [
        {
            "id": "whatif-points",
            "type": "bar",
            "labels": labels,
            "datasets": [
                _series(_("Today's rules"), [row["today"] for row in points], "#0172ad"),
                _series(_("Proposal"), [row["proposal"] for row in points], "#e65100"),
            ],
        },
        {
            "id": "whatif-tiers",
            "type": "bar",
            "labels": tier_labels,
            "datasets": [
                _series(_("Today's rules"), [row["today"] for row in tier_rows], "#0172ad"),
                _series(_("Proposal"), [row["proposal"] for row in tier_rows], "#e65100"),
            ],
        },
    ]


@require("loyalty.view_analytics", "loyalty.all_stores")
def whatif_page(request):
    form, result = _compare(request)
    context = {"form": form, "result": result, "currency": form.program.currency}
    if result is not None:
        rows, tier_rows = _rows(result, form.tiers)
        context.update(rows=rows, tier_rows=tier_rows, charts=_charts(rows, tier_rows))
    return render(request, "analytics/whatif.html", context)


@require("loyalty.view_analytics", "loyalty.all_stores")
def whatif_export(request):
    """The comparison as CSV: one row a figure, then one a tier's members at the end."""
    form, result = _compare(request)
    if result is None:
        return errors_response(
            form.errors if form.is_bound else {"expiry_days": [_("No proposal given.")]}
        )
    rows, tier_rows = _rows(result, form.tiers)
    lines = [[row["key"], row["today"], row["proposal"], row["difference"]] for row in rows]
    lines += [
        [f"members_{row['tier'].code}", row["today"], row["proposal"], row["difference"]]
        for row in tier_rows
    ]
    return stream_csv(
        "what-if.csv",
        ["figure", "today", "proposal", "difference"],
        (["" if value is None else value for value in line] for line in lines),
    )

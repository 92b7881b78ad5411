"""Forms of the segment and campaign pages."""

import datetime
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone, translation
from django.utils.dates import MONTHS
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns.models import Campaign, CampaignVariant, Segment
from loyalty.models import Coupon, MembershipPlan, Store, Tier
from members.segments import ACTIVITY_WINDOWS, DEFAULT_ACTIVITY_DAYS, activity_window

YES_NO = [("", _("Any")), ("yes", _("Yes")), ("no", _("No"))]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _window_label(days):
    return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}


# Translated when shown (the form's choices are built once, at import).
_days = lazy(_window_label, str)


def _stores():
    return Store.objects.order_by("code")


class SegmentForm(forms.Form):
    """A segment's name and criteria; ``definition()`` is what ``segment_members`` reads."""

    name = forms.CharField(label=_("Name"), max_length=200)
    enrolled_stores = forms.ModelMultipleChoiceField(
        label=_("Enrolled in store"),
        queryset=Store.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    bought_at_stores = forms.ModelMultipleChoiceField(
        label=_("Bought at store"),
        queryset=Store.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    tiers = forms.ModelMultipleChoiceField(
        label=_("Tier"),
        queryset=Tier.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    enrolled_from = forms.DateField(label=_("Enrolled from"), required=False, widget=DateInput())
    enrolled_to = forms.DateField(label=_("Enrolled until"), required=False, widget=DateInput())
    lapsed_days = forms.IntegerField(
        label=_("Lapsed: last purchase more than this many days ago"),
        required=False,
        min_value=1,
        max_value=3650,
    )
    activity_days = forms.TypedChoiceField(
        label=_("Purchases and spend counted over the last"),
        choices=[(days, _days(days)) for days in ACTIVITY_WINDOWS],
        coerce=int,
        empty_value=None,
        required=False,
        initial=DEFAULT_ACTIVITY_DAYS,
    )
    purchases_min = forms.IntegerField(label=_("Purchases, at least"), required=False, min_value=0)
    purchases_max = forms.IntegerField(label=_("Purchases, at most"), required=False, min_value=0)
    spend_min = forms.DecimalField(
        label=_("Spend, at least"), required=False, min_value=0, decimal_places=2
    )
    spend_max = forms.DecimalField(
        label=_("Spend, at most"), required=False, min_value=0, decimal_places=2
    )
    birthday_month = forms.TypedChoiceField(
        label=_("Birthday month"),
        choices=[("", _("Any"))] + list(MONTHS.items()),
        coerce=int,
        empty_value=None,
        required=False,
    )
    consent = forms.ChoiceField(label=_("Marketing consent"), choices=YES_NO, required=False)
    has_email = forms.ChoiceField(label=_("Has an e-mail"), choices=YES_NO, required=False)
    has_phone = forms.ChoiceField(label=_("Has a phone"), choices=YES_NO, required=False)

    CHOICE_LISTS = ("enrolled_stores", "bought_at_stores", "tiers")

    def __init__(self, *args, count_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        # The live count runs while the marketer is still choosing: no name needed yet.
        self.fields["name"].required = not count_only
        self.fields["enrolled_stores"].queryset = _stores()
        self.fields["bought_at_stores"].queryset = _stores()
        self.fields["tiers"].queryset = Tier.objects.order_by("threshold", "id")
        # A tier reads in the page's language (its Russian name when it has one).
        language = translation.get_language()
        self.fields["tiers"].label_from_instance = lambda tier: tier.display_name(language)

    @classmethod
    def initial_from(cls, segment):
        initial = {"name": segment.name, **segment.definition}
        if "activity_days" in initial:  # an older definition: the window it is counted over
            initial["activity_days"] = activity_window(initial["activity_days"])
        return initial

    def clean(self):
        data = super().clean()
        for low, high in (("purchases_min", "purchases_max"), ("spend_min", "spend_max")):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, _("The upper bound is below the lower one."))
        start, end = data.get("enrolled_from"), data.get("enrolled_to")
        if start and end and start > end:
            self.add_error("enrolled_to", _("This date is before the start."))
        return data

    def definition(self):
        """The criteria as JSON: ids of stores and tiers, dates and amounts as text."""
        data = self.cleaned_data
        result = {}
        for name in self.CHOICE_LISTS:
            if data.get(name):
                result[name] = sorted(item.pk for item in data[name])
        for name in ("enrolled_from", "enrolled_to"):
            if data.get(name):
                result[name] = data[name].isoformat()
        for name in (
            "lapsed_days",
            "activity_days",
            "purchases_min",
            "purchases_max",
            "birthday_month",
        ):
            if data.get(name) is not None:
                result[name] = data[name]
        for name in ("spend_min", "spend_max"):
            if data.get(name) is not None:
                result[name] = str(data[name])
        for name in ("consent", "has_email", "has_phone"):
            if data.get(name):
                result[name] = data[name]
        if not any(
            key in result for key in ("purchases_min", "purchases_max", "spend_min", "spend_max")
        ):
            result.pop("activity_days", None)
        return result


VARIANT_FIELDS = [
    "share",
    "points",
    "factor",
    "coupon_value",
    "subject_ru",
    "message_ru",
    "subject_en",
    "message_en",
]


class VariantForm(forms.ModelForm):
    """Variant 2, 3 or 4 of a campaign: a row left without a share is no variant."""

    share = forms.IntegerField(
        label=_("share of the segment, %"),
        required=False,
        min_value=1,
        max_value=89,
        help_text=_("Leave empty for no such variant."),
    )

    class Meta:
        model = CampaignVariant
        fields = VARIANT_FIELDS
        widgets = {
            "message_ru": forms.Textarea(attrs={"rows": 2}),
            "message_en": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in VARIANT_FIELDS:
            self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name, default in (("points", 0), ("factor", Decimal(2)), ("coupon_value", 0)):
            if data.get(name) is None:
                data[name] = default
        return data


VariantFormSet = forms.formset_factory(
    VariantForm, extra=CampaignVariant.MAX_NUMBER - 1, max_num=CampaignVariant.MAX_NUMBER - 1
)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "segment",
            "kind",
            "control_percent",
            "points",
            "points_expiry_days",
            "factor",
            "starts_at",
            "ends_at",
            "stores",
            "coupon_kind",
            "coupon_value",
            "coupon_sku",
            "coupon_min_amount",
            "coupon_valid_days",
            "trial_plan",
            "subject_ru",
            "message_ru",
            "subject_en",
            "message_en",
            "results_days",
            "survey_at_end",
            "lapsed_days",
        ]
        widgets = {
            "kind": forms.RadioSelect,
            "starts_at": DateTimeInput(),
            "ends_at": DateTimeInput(),
            "stores": forms.CheckboxSelectMultiple,
            "message_ru": forms.Textarea(attrs={"rows": 3}),
            "message_en": forms.Textarea(attrs={"rows": 3}),
        }

    # Which fields each kind needs, for the page's groups and the checks below.
    KIND_FIELDS = {
        Campaign.Kind.BONUS_POINTS: ("points", "points_expiry_days"),
        Campaign.Kind.MULTIPLIER: ("factor", "starts_at", "ends_at", "stores"),
        Campaign.Kind.COUPON: (
            "coupon_kind",
            "coupon_value",
            "coupon_sku",
            "coupon_min_amount",
            "coupon_valid_days",
        ),
        Campaign.Kind.FREE_TRIAL: ("trial_plan",),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Variants 2-4 (a formset). A post without the formset's fields (an older form) leaves
        # the campaign's variants as they are: ``variants`` is None then.
        initial = [
            {name: getattr(variant, name) for name in VARIANT_FIELDS}
            for variant in (self.instance.variants.all() if self.instance.pk else [])
        ]
        if self.is_bound and "variants-TOTAL_FORMS" not in self.data:
            self.variants = None
        else:
            self.variants = VariantFormSet(
                self.data if self.is_bound else None, initial=initial, prefix="variants"
            )
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        self.fields["stores"].queryset = _stores()
        self.fields["kind"].choices = Campaign.Kind.choices
        self.fields["coupon_kind"].choices = [("", "—")] + list(Coupon.Kind.choices)
        self.fields["trial_plan"].queryset = MembershipPlan.objects.filter(
            is_active=True, trial_days__gt=0
        )
        self.fields["trial_plan"].label_from_instance = lambda plan: plan.display_name()

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        required = _("Required for this kind of campaign.")
        if kind == Campaign.Kind.BONUS_POINTS and not data.get("points"):
            self.add_error("points", required)
        if kind == Campaign.Kind.MULTIPLIER:
            for name in ("starts_at", "ends_at"):
                if not data.get(name):
                    self.add_error(name, required)
            if data.get("factor") is not None and data["factor"] <= Decimal(1):
                self.add_error("factor", _("A multiplier must be above 1."))
            start, end = data.get("starts_at"), data.get("ends_at")
            if start and end and end <= start:
                self.add_error("ends_at", _("The end must be after the start."))
            elif end and end <= timezone.now():
                self.add_error("ends_at", _("This time has already passed."))
        if kind == Campaign.Kind.COUPON:
            coupon_kind = data.get("coupon_kind")
            if not coupon_kind:
                self.add_error("coupon_kind", required)
            elif coupon_kind in (Coupon.Kind.PERCENT, Coupon.Kind.FIXED):
                value = data.get("coupon_value") or 0
                if value <= 0:
                    self.add_error("coupon_value", required)
                elif coupon_kind == Coupon.Kind.PERCENT and value > 100:
                    self.add_error("coupon_value", _("At most 100%."))
            elif not data.get("coupon_sku"):
                self.add_error("coupon_sku", required)
        if kind == Campaign.Kind.FREE_TRIAL and not data.get("trial_plan"):
            self.add_error("trial_plan", required)
        if kind == Campaign.Kind.MESSAGE and not (data.get("message_ru") or data.get("message_en")):
            self.add_error("message_ru", _("Write the message in at least one language."))
        for language in ("ru", "en"):
            if data.get(f"subject_{language}") and not data.get(f"message_{language}"):
                self.add_error(f"message_{language}", _("A subject needs a message."))
        if data.get("control_percent") is not None and data["control_percent"] > 90:
            self.add_error("control_percent", _("At most 90%."))
        for name in ("points_expiry_days", "coupon_valid_days", "results_days"):
            if data.get(name) is not None and data[name] < 1:
                self.add_error(name, _("At least one day."))
        if kind == Campaign.Kind.MULTIPLIER and data.get("lapsed_days"):
            self.add_error("lapsed_days", _("A win-back cannot be an earn multiplier."))
        self._clean_variants(data)
        return data

    def _clean_variants(self, data):
        """Each variant's offer as the campaign's kind needs it; control and the variants
        leave at least 1% of the segment to the campaign's own offer (variant 1)."""
        if self.variants is None or not self.variants.is_valid():
            return
        kind, required = data.get("kind"), _("Required for this kind of campaign.")
        for form in self.variant_forms():
            row = form.cleaned_data
            if kind == Campaign.Kind.BONUS_POINTS and not row["points"]:
                form.add_error("points", required)
            if kind == Campaign.Kind.MULTIPLIER and row["factor"] <= Decimal(1):
                form.add_error("factor", _("A multiplier must be above 1."))
            if kind == Campaign.Kind.COUPON and data.get("coupon_kind") in (
                Coupon.Kind.PERCENT,
                Coupon.Kind.FIXED,
            ):
                if row["coupon_value"] <= 0:
                    form.add_error("coupon_value", required)
                elif data["coupon_kind"] == Coupon.Kind.PERCENT and row["coupon_value"] > 100:
                    form.add_error("coupon_value", _("At most 100%."))
            for language in ("ru", "en"):
                if row.get(f"subject_{language}") and not row.get(f"message_{language}"):
                    form.add_error(f"message_{language}", _("A subject needs a message."))
        shares = sum(form.cleaned_data["share"] for form in self.variant_forms())
        if data.get("control_percent") is not None and data["control_percent"] + shares > 99:
            self.add_error(
                "control_percent",
                _("The control group and the variants leave no members for variant 1."),
            )

    def variant_forms(self):
        """The filled rows of the variants formset (a share given)."""
        return [form for form in self.variants if form.cleaned_data.get("share")]

    def variant_rows(self):
        """The variants to save, numbered 2, 3, 4 in the order given; None: keep them."""
        if self.variants is None:
            return None
        return [
            {"number": number, **{name: form.cleaned_data[name] for name in VARIANT_FIELDS}}
            for number, form in enumerate(self.variant_forms(), start=2)
        ]

    def is_valid(self):
        valid = super().is_valid()  # runs clean(), which checks the variants against the kind
        return valid and (self.variants is None or self.variants.is_valid())


class ScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(label=_("Send at"), widget=DateTimeInput())

    # A time a little in the past is the minute the marketer is in: it is sent at once.
    SLACK = timedelta(minutes=5)

    def clean_scheduled_at(self):
        when = self.cleaned_data["scheduled_at"]
        if when < timezone.now() - self.SLACK:
            raise forms.ValidationError(_("This time has already passed."))
        return when


class CouponSeriesForm(forms.Form):
    """General coupons (not tied to a member): one shared code, or a series of unique codes."""

    SHARED, UNIQUE = "shared", "unique"

    mode = forms.ChoiceField(
        label=_("Codes"),
        choices=[
            (SHARED, _("One shared code (printed on a flyer, said on the radio)")),
            (UNIQUE, _("A series of unique codes of one use each")),
        ],
        initial=SHARED,
        widget=forms.RadioSelect,
    )
    code = forms.RegexField(
        label=_("Shared code"),
        regex=r"^[A-Za-z0-9_-]{3,64}$",
        required=False,
        help_text=_("Letters, digits, - and _, e.g. SUMMER25."),
        error_messages={"invalid": _("Use 3 to 64 letters, digits, - or _.")},
    )
    max_uses = forms.IntegerField(
        label=_("Uses allowed"),
        min_value=1,
        required=False,
        help_text=_("Of the shared code, across all members; empty: no limit."),
    )
    prefix = forms.RegexField(
        label=_("Prefix of the series"),
        regex=r"^[A-Z0-9]{2,16}$",
        required=False,
        help_text=_("2 to 16 capital letters or digits; each code is PREFIX-XXXXXXXXXX."),
        error_messages={"invalid": _("Use 2 to 16 capital letters or digits.")},
    )
    count = forms.IntegerField(
        label=_("Number of codes"), min_value=1, max_value=100_000, required=False
    )
    kind = forms.ChoiceField(label=_("Discount"), choices=Coupon.Kind.choices)
    value = forms.DecimalField(
        label=_("Value"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
        initial=Decimal("0"),
        help_text=_("Percent for a percent coupon, an amount for a fixed one."),
    )
    sku = forms.CharField(
        label=_("SKU"), max_length=100, required=False, help_text=_("For a free or BOGO product.")
    )
    min_amount = forms.DecimalField(
        label=_("Minimum purchase"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
        initial=Decimal("0"),
    )
    valid_from = forms.DateField(label=_("Valid from"), required=False, widget=DateInput())
    valid_until = forms.DateField(
        label=_("Valid until"),
        required=False,
        widget=DateInput(),
        help_text=_("The last day the codes work."),
    )

    def clean(self):
        cleaned = super().clean()
        mode, kind = cleaned.get("mode"), cleaned.get("kind")
        if mode == self.SHARED and not cleaned.get("code"):
            self.add_error("code", _("Give the shared code."))
        if mode == self.UNIQUE:
            if not cleaned.get("prefix"):
                self.add_error("prefix", _("Give the prefix of the series."))
            if not cleaned.get("count"):
                self.add_error("count", _("How many codes?"))
        if kind == Coupon.Kind.PERCENT and (cleaned.get("value") or 0) > 100:
            self.add_error("value", _("A percent coupon takes at most 100%."))
        if kind in (Coupon.Kind.PERCENT, Coupon.Kind.FIXED) and not cleaned.get("value"):
            self.add_error("value", _("Give the discount."))
        if kind in (Coupon.Kind.FREE_PRODUCT, Coupon.Kind.BOGO) and not cleaned.get("sku"):
            self.add_error("sku", _("Give the product's SKU."))
        start, end = cleaned.get("valid_from"), cleaned.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", _("The last day comes before the first."))
        return cleaned

    def terms(self):
        """The coupon's fields, the dates as the start of their day in the server's zone."""
        data = self.cleaned_data
        start, end = data.get("valid_from"), data.get("valid_until")
        return {
            "kind": data["kind"],
            "value": data["value"],
            "sku": data.get("sku", "").strip(),
            "min_amount": data["min_amount"],
            "valid_from": _day_start(start) if start else None,
            "valid_until": _day_start(end + timedelta(days=1)) if end else None,
        }


def _day_start(day):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class CouponFilterForm(forms.Form):
    prefix = forms.CharField(label=_("Code starts with"), max_length=64, required=False)

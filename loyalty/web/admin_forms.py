"""Forms of the administration pages."""

from decimal import Decimal

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.utils.translation import gettext_lazy as _

from loyalty.models import MembershipPlan, Perk, ProductRule, ProgramSettings, Store, Tier, User
from loyalty.roles import ROLE_LABELS


class StoreForm(forms.ModelForm):
    class Meta:
        model = Store
        fields = ["code", "name", "city", "time_zone", "kind", "earn_rate", "is_active"]


class ApiKeyForm(forms.Form):
    store = forms.ModelChoiceField(label=_("Store or partner"), queryset=Store.objects.all())
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("Where the key is used, e.g. 'Till 3'.")
    )


class ProgramSettingsForm(forms.ModelForm):
    class Meta:
        model = ProgramSettings
        fields = [
            "currency",
            "point_value",
            "max_redeem_share",
            "min_purchase_amount",
            "pending_days",
            "expiry_days",
            "tier_qualification",
            "tier_window_days",
            "downgrade_grace_days",
            "returned_points_expiry_days",
            "birthday_points",
            "birthday_points_expiry_days",
            "expiry_reminder_days",
            "referral_points",
            "adjust_limit_store_manager",
            "adjust_limit_support",
            "adjust_limit_marketer",
        ]


class TierForm(forms.ModelForm):
    perks = forms.MultipleChoiceField(
        label=_("Perks"),
        required=False,
        choices=Perk.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Tier
        fields = ["code", "name", "name_ru", "threshold", "earn_rate", "discount_percent", "perks"]
        labels = {"name": _("Name in English"), "name_ru": _("Name in Russian")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["perks"] = list(self.instance.perks or [])


class MembershipPlanForm(forms.ModelForm):
    perks = forms.MultipleChoiceField(
        label=_("Perks"),
        required=False,
        choices=Perk.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = MembershipPlan
        fields = [
            "code",
            "name",
            "name_ru",
            "fee",
            "period_days",
            "trial_days",
            "tier",
            "bonus_points",
            "perks",
            "is_active",
        ]
        labels = {"name": _("Name in English"), "name_ru": _("Name in Russian")}
        help_texts = {"trial_days": _("0: no free trial. A member has one trial per plan.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["perks"] = list(self.instance.perks or [])

    def clean_fee(self):
        fee = self.cleaned_data["fee"]
        if fee is not None and fee < 0:
            raise forms.ValidationError(_("The fee cannot be negative."))
        return fee

    def clean_period_days(self):
        days = self.cleaned_data["period_days"]
        if days is not None and days < 1:
            raise forms.ValidationError(_("A period is at least one day."))
        return days


class ProductRuleForm(forms.ModelForm):
    class Meta:
        model = ProductRule
        fields = ["kind", "category", "sku", "multiplier", "is_active"]
        labels = {"sku": _("SKU (product code)")}
        help_texts = {
            "category": _("The rule applies to every product of this category..."),
            "sku": _("...or to this one product (a SKU wins over the category)."),
            "multiplier": _("Boosted rules only: 2 earns double on these lines."),
        }

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("category") and not cleaned.get("sku"):
            self.add_error("category", _("Name a category or a SKU."))
        multiplier = cleaned.get("multiplier")
        if cleaned.get("kind") == ProductRule.Kind.BOOST:
            if multiplier is not None and multiplier <= 0:
                self.add_error("multiplier", _("A boost multiplies by more than 0."))
        elif "multiplier" in cleaned:
            cleaned["multiplier"] = Decimal("1.00")
        return cleaned


class StaffForm(forms.ModelForm):
    role = forms.ChoiceField(label=_("Role"), choices=list(ROLE_LABELS.items()))
    stores = forms.ModelMultipleChoiceField(
        label=_("Stores managed"),
        queryset=Store.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only store managers are limited to their stores."),
    )
    password = forms.CharField(
        label=_("New password"),
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the current password."),
    )

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            group = self.instance.groups.first()
            self.initial["role"] = group.name if group else None
            self.initial["stores"] = list(self.instance.stores.all())
        else:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""

    def clean_password(self):
        password = self.cleaned_data["password"]
        if password:
            validate_password(password, self.instance)
        return password

    def clean(self):
        cleaned = super().clean()
        from loyalty.roles import STORE_MANAGER

        if cleaned.get("role") == STORE_MANAGER and not cleaned.get("stores"):
            self.add_error("stores", _("A store manager needs at least one store."))
        return cleaned

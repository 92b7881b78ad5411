from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import Store

CONSENT_TEXT = _(
    "I agree to receive offers, news and surveys about the loyalty program by e-mail and SMS. "
    "I can withdraw this consent at any time."
)


class DateInput(forms.DateInput):
    input_type = "date"


class MemberForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"inputmode": "tel", "autocomplete": "off", "placeholder": "+7 912 345-67-89"}
        ),
    )
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.EmailField(label=_("E-mail"), required=False)
    birth_date = forms.DateField(label=_("Birth date"), required=False, widget=DateInput)
    language = forms.ChoiceField(
        label=_("Language of messages"), choices=[("ru", "Русский"), ("en", "English")]
    )
    marketing_consent = forms.BooleanField(
        label=_("The customer agrees to receive offers"), required=False
    )

    def clean_birth_date(self):
        value = self.cleaned_data["birth_date"]
        if value and not (value.year >= 1900 and value <= timezone.localdate()):
            raise forms.ValidationError(_("Enter a real birth date."))
        return value


class EnrolForm(MemberForm):
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none())

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores
        if stores.count() == 1:
            self.fields["store"].initial = stores.first()


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )


class MembershipJoinForm(forms.Form):
    """Join a paid membership plan at the counter: a first paid period or the plan's free trial."""

    plan = forms.ModelChoiceField(label=_("Plan"), queryset=None, empty_label=None)
    trial = forms.BooleanField(
        label=_("Start with the free trial"),
        required=False,
        help_text=_("Once per member and plan; nothing is charged until it ends."),
    )

    def __init__(self, *args, **kwargs):
        from loyalty.models import MembershipPlan

        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = MembershipPlan.objects.filter(is_active=True)
        self.fields["plan"].label_from_instance = lambda plan: plan.display_name()


class AdjustForm(ReasonForm):
    points = forms.IntegerField(
        label=_("Points (negative to take away)"),
        min_value=-1_000_000,
        max_value=1_000_000,
    )

    def clean_points(self):
        value = self.cleaned_data["points"]
        if value == 0:
            raise forms.ValidationError(_("Enter a non-zero number of points."))
        return value


class MergeForm(ReasonForm):
    duplicate_card = forms.CharField(
        label=_("Card number of the duplicate to merge into this member"),
        max_length=13,
        min_length=13,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class EraseForm(ReasonForm):
    """Erasure asks for the card number typed out, so that it is never one click away."""

    confirm = forms.CharField(
        label=_("Type the card number to confirm"),
        max_length=13,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def __init__(self, *args, card_number, **kwargs):
        super().__init__(*args, **kwargs)
        self.card_number = card_number

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.card_number:
            raise forms.ValidationError(_("This is not the member's card number."))
        return value

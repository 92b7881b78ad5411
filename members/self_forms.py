"""Forms of the member's own page (members/self_views.py)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import LoyaltyError
from members.forms import CONSENT_TEXT
from members.services import normalise_phone


class SignInForm(forms.Form):
    contact = forms.CharField(
        label=_("Phone or e-mail"),
        max_length=254,
        help_text=_("The one you gave when you joined."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "inputmode": "email"}),
    )

    def clean_contact(self):
        contact = self.cleaned_data["contact"].strip()
        if "@" in contact:
            forms.EmailField().clean(contact)
            return contact
        try:
            normalise_phone(contact)
        except LoyaltyError:
            raise forms.ValidationError(_("Type a phone number or an e-mail address.")) from None
        return contact


class DetailsForm(forms.Form):
    """The member's contact details, language and marketing consent."""

    email = forms.EmailField(label=_("E-mail"), required=False, max_length=254)
    phone = forms.CharField(label=_("Phone"), max_length=32)
    language = forms.ChoiceField(
        label=_("Language of the page and of messages"),
        choices=[("ru", "Русский"), ("en", "English")],
    )
    marketing_consent = forms.BooleanField(label=CONSENT_TEXT, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["phone"].widget.attrs.update({"autocomplete": "tel", "inputmode": "tel"})


class EraseForm(forms.Form):
    """Erasure is final: the member types their card number to confirm it."""

    confirm = forms.CharField(label=_("Type your card number to confirm"), max_length=32)

    def __init__(self, *args, card_number, **kwargs):
        super().__init__(*args, **kwargs)
        self.card_number = card_number
        self.fields["confirm"].widget.attrs.update({"autocomplete": "off", "inputmode": "numeric"})

    def clean_confirm(self):
        typed = "".join(self.cleaned_data["confirm"].split())
        if typed != self.card_number:
            raise forms.ValidationError(_("This is not your card number."))
        return typed

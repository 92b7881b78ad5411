"""Input validation and output shapes of API v1. No rules here: services own them."""

import re
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from loyalty.engine import cards
from loyalty.engine.pricing import Line
from loyalty.engine.tiers import perks_of
from loyalty.models import Channel, LedgerEntry, Perk
from members.models import Member

MAX_AMOUNT = Decimal("9999999999.99")


# The JSON type each kind of field takes. DRF would also read 5 as "5", "5" as 5 and "yes" as
# true; the schema says string, integer and boolean, and the API takes exactly what it says.
JSON_TYPES = (
    (serializers.BooleanField, (bool,), _("Must be true or false.")),
    (serializers.IntegerField, (int,), _("Must be a whole number (not a string).")),
    (serializers.CharField, (str,), _("Must be a string.")),
)


def wrong_json_type(field, value):
    """The message for a value of another JSON type than the field's, or None."""
    if value is None:
        return None  # null is for allow_null to judge
    for field_class, json_types, message in JSON_TYPES:
        if isinstance(field, field_class):
            wrong = not isinstance(value, json_types) or (
                isinstance(value, bool) and bool not in json_types
            )
            return message if wrong else None
    return None


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, by name, instead of silently ignoring them, and values of
    another JSON type than the field's (JSON_TYPES).

    Its fields are built once per class, not per request: DRF deep-copies every declared field
    (re-running each one's __init__) for each new serializer, a fifth of a purchase's Python time
    at the till. Input fields keep no state of a request (the request's values, errors and
    validated data live on the serializer and in locals), so every serializer of a class shares
    one set, bound to a prototype of the class that is never given data. A serializer given a
    context, or partial, builds its own (the fields would see the prototype's).
    """

    @cached_property
    def fields(self):
        if self._context or self.partial:
            return _own_fields(self)
        cls = type(self)
        prototype = _prototypes.get(cls)
        if prototype is None:
            prototype = cls()
            prototype.__dict__["fields"] = _own_fields(prototype)
            _prototypes[cls] = prototype
        return prototype.fields

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown})
            wrong = {}
            for name, value in data.items():
                message = wrong_json_type(self.fields[name], value)
                if message:
                    wrong[name] = [message]
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


# StrictSerializer class -> its prototype, the instance whose fields every other one shares.
_prototypes = {}


def _own_fields(serializer):
    """The serializer's own fields, as DRF builds them for each instance."""
    fields = BindingDict(serializer)
    for name, field in serializer.get_fields().items():
        fields[name] = field
    return fields


# What a decimal looks like in the API: a JSON string of ASCII digits, a dot and at most two (or,
# for quantities, three) places: "1000.00", "1000", "0.5". Anything else is refused with 400 and
# the field named, never guessed at: a JSON number (floats lose kopecks), a sign, an exponent
# ("1e3"), spaces (" 100 "), a comma, leading zeros ("0100") or digits of other scripts ("１００",
# which Python's Decimal would otherwise read as 100). The OpenAPI patterns below say the same and
# also carry each field's range, so that a value the schema allows is one the API accepts.
AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?))$"
PRICE_PATTERN = r"^(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?$"
QUANTITY_PATTERN = (
    r"^(?:[1-9][0-9]{0,5}(?:\.[0-9]{1,3})?|0\.(?:00[1-9]|0[1-9][0-9]?|[1-9][0-9]{0,2}))$"
)
CARD_NUMBER_PATTERN = cards.PATTERN


class DecimalStringField(serializers.DecimalField):
    """A decimal written as the API documents it (AMOUNT_PATTERN's comment), then range-checked."""

    default_error_messages = {
        "format": _(
            "Write the number as a string of digits with a dot and at most %(places)s decimal "
            'places, e.g. "%(example)s" (no spaces, sign, exponent or leading zeros).'
        ),
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._format = re.compile(rf"(?:0|[1-9][0-9]*)(?:\.[0-9]{{1,{self.decimal_places}}})?")

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self._format.fullmatch(data):
            example = "1000.00" if self.decimal_places == 2 else "1.5"
            self.fail("format", places=self.decimal_places, example=example)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "pattern": AMOUNT_PATTERN,
        "example": "1000.00",
        "description": "Roubles as a decimal string, 0.01 to 9999999999.99, at most two places "
        '("1000.00", "1000", "99.9"); no spaces, sign, exponent, comma or leading zeros.',
    }
)
class AmountField(DecimalStringField):
    def __init__(self, **kwargs):
        super().__init__(
            max_digits=12,
            decimal_places=2,
            min_value=Decimal("0.01"),
            max_value=MAX_AMOUNT,
            **kwargs,
        )


@extend_schema_field(
    {
        "type": "string",
        "pattern": PRICE_PATTERN,
        "example": "500.00",
        "description": "Price of one unit as a decimal string, 0 to 9999999999.99, at most two "
        "places; no spaces, sign, exponent, comma or leading zeros.",
    }
)
class PriceField(DecimalStringField):
    def __init__(self, **kwargs):
        super().__init__(
            max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=MAX_AMOUNT, **kwargs
        )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": QUANTITY_PATTERN},
            {"type": "integer", "minimum": 1, "maximum": 999999},
        ],
        "example": "2",
        "description": "Quantity: a decimal string, 0.001 to 999999.999, at most three places, "
        "or a whole number of pieces, 1 to 999999.",
    }
)
class QuantityField(DecimalStringField):
    """A quantity may also be a JSON integer (2 pieces): a whole count loses nothing."""

    def __init__(self, **kwargs):
        super().__init__(
            max_digits=9,
            decimal_places=3,
            min_value=Decimal("0.001"),
            max_value=Decimal("999999.999"),
            **kwargs,
        )

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


def amount_field(**kwargs):
    return AmountField(**kwargs)


@extend_schema_field(
    {
        "type": "string",
        "pattern": CARD_NUMBER_PATTERN,
        "example": "2000000000008",
        "description": "13 digits, the last a Luhn check digit (a number failing it is refused).",
    }
)
class CardNumberField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=13, min_length=13, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not cards.is_valid(value):
            raise serializers.ValidationError(_("Not a valid card number (13 digits)."))
        return value


class EnrolSerializer(StrictSerializer):
    # The rules below that no pattern spells are said in each field's description (docs/api.md).
    phone = serializers.CharField(
        min_length=1,
        max_length=32,
        help_text="Phone in E.164 or national format (+7 912 345-67-89, 8 912 …); a number the "
        "phonenumbers library does not call valid is refused with 400, one already enrolled "
        "with 409.",
    )
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        max_length=254,
        help_text="An e-mail address Django's EmailValidator accepts (stricter than the email "
        "format: e.g. a domain with a dot), or empty; another is refused with 400.",
    )
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    birth_date = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="From 1900-01-01 to today; another date is refused with 400.",
    )
    marketing_consent = serializers.BooleanField(required=False, default=False)
    consent_text = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    referral_code = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="The referral code of an enrolled member, or empty; a code no member has is "
        "refused with 400.",
    )
    language = serializers.ChoiceField(choices=["ru", "en"], required=False, default="ru")

    def validate_birth_date(self, value):
        if value is not None and not (date(1900, 1, 1) <= value <= timezone.localdate()):
            raise serializers.ValidationError(_("Enter a real birth date."))
        return value


class LineSerializer(StrictSerializer):
    sku = serializers.CharField(min_length=1, max_length=100)
    category = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    quantity = QuantityField()
    unit_price = PriceField()

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return Line(**value)


LINES_HELP = (
    "The receipt's lines. When given, the sum of quantity × unit_price of each line (rounded half "
    "up to the kopeck) must equal amount exactly, or the request is refused with 400 naming lines."
)


class BasketSerializer(StrictSerializer):
    card_number = CardNumberField(required=False, allow_null=True, default=None)
    amount = amount_field()
    lines = serializers.ListField(
        child=LineSerializer(), required=False, max_length=500, help_text=LINES_HELP
    )
    redeem_points = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=1_000_000_000,
        help_text="Points to spend; only with a card_number (an anonymous purchase spends none).",
    )
    coupon_code = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")

    def validate(self, attrs):
        if attrs.get("redeem_points") and not attrs.get("card_number"):
            raise serializers.ValidationError(
                {"redeem_points": [_("Only a member's purchase can spend points.")]}
            )
        return attrs


class QuoteSerializer(BasketSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default="store")


class PurchaseSerializer(BasketSerializer):
    external_id = serializers.CharField(min_length=1, max_length=64)
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the purchase happened (null: now): from the year 2000 to now (five "
        "minutes of clock skew allowed); another time is refused with 400.",
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default="store")

    def validate_occurred_at(self, value):
        if value is not None and value > timezone.now() + timedelta(minutes=5):
            raise serializers.ValidationError(_("A purchase cannot happen in the future."))
        if value is not None and value.year < 2000:
            raise serializers.ValidationError(_("Enter a real time of purchase."))
        return value


class RefundSerializer(StrictSerializer):
    refund_id = serializers.CharField(min_length=1, max_length=64)
    amount = amount_field()


class CouponCheckSerializer(StrictSerializer):
    card_number = CardNumberField(required=False, allow_null=True, default=None)
    amount = amount_field()
    lines = serializers.ListField(
        child=LineSerializer(), required=False, max_length=500, help_text=LINES_HELP
    )


class CouponCheckOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    applicable = serializers.BooleanField()
    reason = serializers.CharField()
    kind = serializers.CharField(allow_null=True)
    discount_amount = serializers.CharField()


class TierOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class PerkOutSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=Perk.choices)
    name = serializers.CharField()


class BalanceOutSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField()


class MemberOutSerializer(serializers.ModelSerializer):
    # null once the member's personal data was erased
    phone = serializers.CharField(source="phone.as_e164", allow_null=True)
    tier = TierOutSerializer()
    perks = serializers.SerializerMethodField(help_text="The perks of the member's tier.")
    balance = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = [
            "card_number",
            "first_name",
            "last_name",
            "phone",
            "email",
            "birth_date",
            "tier",
            "perks",
            "balance",
            "status",
            "marketing_consent",
            "referral_code",
            "enrolled_at",
        ]

    @extend_schema_field(PerkOutSerializer(many=True))
    def get_perks(self, member) -> list:
        return perks_of(member.tier)

    @extend_schema_field(BalanceOutSerializer)
    def get_balance(self, member) -> dict:
        balances = self.context.get("balances", {})
        balance = balances.get(member.pk)
        return balance.as_dict() if balance else {"available": 0, "pending": 0}


class MemberListOutSerializer(serializers.Serializer):
    """Documents the answer of GET /members (the body is built by the view)."""

    count = serializers.IntegerField()
    results = MemberOutSerializer(many=True)


class LedgerEntryOutSerializer(serializers.ModelSerializer):
    # null for an entry no purchase made (an adjustment, a bonus, an expiry)
    purchase = serializers.CharField(source="purchase.external_id", default=None, allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "points", "created_at", "expires_at", "purchase", "reason"]


class ErasureSerializer(StrictSerializer):
    reason = serializers.CharField(
        min_length=1,
        max_length=500,
        help_text="Why (the member's request, its date or reference); kept in the audit log.",
    )


class ErasureOutSerializer(serializers.Serializer):
    card_number = serializers.CharField()
    status = serializers.CharField(help_text="`blocked` (or `merged` for a merged card).")
    erased_at = serializers.DateTimeField()


class PersonalDataOutSerializer(serializers.Serializer):
    """Documents the answer of GET /members/{card_number}/personal-data (built by
    members.personal_data.member_data)."""

    format = serializers.CharField(help_text="`loyalty-personal-data/1`")
    exported_at = serializers.DateTimeField()
    profile = serializers.DictField(
        help_text="card_number, phone, email, names, birth_date, language, status, tier, "
        "points, enrolment, external_ref, referral_code and the current marketing consent"
    )
    consents = serializers.ListField(
        child=serializers.DictField(),
        help_text="Every change of marketing consent, oldest first: given, source, the text "
        "shown, at, staff.",
    )
    purchases = serializers.ListField(
        child=serializers.DictField(), help_text="Receipts with their lines and refunds."
    )
    ledger = serializers.ListField(child=serializers.DictField(), help_text="Every entry.")
    messages = serializers.ListField(child=serializers.DictField())
    survey_answers = serializers.ListField(child=serializers.DictField())
    complaints = serializers.ListField(
        child=serializers.DictField(), help_text="Cases with their notes."
    )


class PurchaseOutSerializer(serializers.Serializer):
    """Documents the answer of POST /purchases (the body is built by the service)."""

    external_id = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    amount = serializers.CharField()
    discount_amount = serializers.CharField()
    redeemed_points = serializers.IntegerField()
    paid_amount = serializers.CharField()
    earned_points = serializers.IntegerField()
    balance = BalanceOutSerializer(allow_null=True)
    tier = TierOutSerializer(allow_null=True)


class QuoteOutSerializer(serializers.Serializer):
    amount = serializers.CharField()
    discount_amount = serializers.CharField()
    earn_points = serializers.IntegerField()
    max_redeem_points = serializers.IntegerField()
    redeem_points = serializers.IntegerField()
    payable_amount = serializers.CharField()
    free_delivery = serializers.BooleanField(
        help_text="The member's tier gives free delivery (false without a card)."
    )


class RefundOutSerializer(serializers.Serializer):
    refund_id = serializers.CharField()
    external_id = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    amount = serializers.CharField()
    refunded_amount = serializers.CharField()
    reversed_points = serializers.IntegerField()
    returned_points = serializers.IntegerField()
    balance = BalanceOutSerializer(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


class MembershipPlanOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(help_text="In the language of the request (Accept-Language).")
    fee = serializers.CharField(help_text="Per period, in the program's currency: `299.00`.")
    period_days = serializers.IntegerField()
    trial_days = serializers.IntegerField(help_text="0: no free trial.")
    tier = serializers.CharField(allow_null=True, help_text="The tier code held while it lasts.")
    bonus_points = serializers.IntegerField(help_text="Granted each paid period.")
    perks = serializers.ListField(child=serializers.CharField())


class MembershipPlanListSerializer(serializers.Serializer):
    results = MembershipPlanOutSerializer(many=True)


class MembershipJoinSerializer(StrictSerializer):
    plan = serializers.SlugField(
        max_length=32, help_text="The plan's code (`GET /membership-plans`)."
    )
    trial = serializers.BooleanField(
        default=False, help_text="Start with the plan's free trial (once per member and plan)."
    )


class MembershipOutSerializer(serializers.Serializer):
    plan = serializers.CharField(help_text="The plan's code.")
    status = serializers.ChoiceField(choices=["trial", "active", "lapsed"])
    auto_renew = serializers.BooleanField(help_text="False once the renewal is cancelled.")
    started_at = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="The end of the period paid (or the trial).")
    fee = serializers.CharField(help_text="What the current period cost: `0.00` for a trial.")


class MemberMembershipOutSerializer(serializers.Serializer):
    membership = MembershipOutSerializer(allow_null=True, help_text="`null`: no live membership.")

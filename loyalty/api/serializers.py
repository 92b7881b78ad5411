"""Input validation and output shapes of API v1. No rules here: services own them."""

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.models import Channel, LedgerEntry
from loyalty.services.purchases import Line
from members.models import Member, is_valid_card_number

MAX_AMOUNT = Decimal("9999999999.99")


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, by name, instead of silently ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown})
        return super().to_internal_value(data)


def amount_field(**kwargs):
    return serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_AMOUNT, **kwargs
    )


class CardNumberField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=13, min_length=13, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_valid_card_number(value):
            raise serializers.ValidationError(_("Not a valid card number (13 digits)."))
        return value


class EnrolSerializer(StrictSerializer):
    phone = serializers.CharField(max_length=32)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    birth_date = serializers.DateField(required=False, allow_null=True)
    marketing_consent = serializers.BooleanField(required=False, default=False)
    consent_text = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    referral_code = serializers.CharField(required=False, allow_blank=True, max_length=16)
    language = serializers.ChoiceField(choices=["ru", "en"], required=False, default="ru")

    def validate_birth_date(self, value):
        if value is not None and not (date(1900, 1, 1) <= value <= timezone.localdate()):
            raise serializers.ValidationError(_("Enter a real birth date."))
        return value


class LineSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=100)
    category = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    quantity = serializers.DecimalField(
        max_digits=12, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("999999")
    )
    unit_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=MAX_AMOUNT
    )

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return Line(**value)


class BasketSerializer(StrictSerializer):
    card_number = CardNumberField(required=False, allow_null=True, default=None)
    amount = amount_field()
    lines = serializers.ListField(child=LineSerializer(), required=False, max_length=500)
    redeem_points = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=1_000_000_000
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
    external_id = serializers.CharField(max_length=64)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default="store")

    def validate_occurred_at(self, value):
        if value is not None and value > timezone.now() + timedelta(minutes=5):
            raise serializers.ValidationError(_("A purchase cannot happen in the future."))
        if value is not None and value.year < 2000:
            raise serializers.ValidationError(_("Enter a real time of purchase."))
        return value


class RefundSerializer(StrictSerializer):
    refund_id = serializers.CharField(max_length=64)
    amount = amount_field()


class CouponCheckSerializer(StrictSerializer):
    card_number = CardNumberField(required=False, allow_null=True, default=None)
    amount = amount_field()
    lines = serializers.ListField(child=LineSerializer(), required=False, max_length=500)


class CouponCheckOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    applicable = serializers.BooleanField()
    reason = serializers.CharField()
    kind = serializers.CharField(allow_null=True)
    discount_amount = serializers.CharField()


class TierOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class BalanceOutSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField()


class MemberOutSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(source="phone.as_e164")
    tier = TierOutSerializer()
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
            "balance",
            "status",
            "marketing_consent",
            "referral_code",
            "enrolled_at",
        ]

    def get_balance(self, member) -> dict:
        balances = self.context.get("balances", {})
        balance = balances.get(member.pk)
        return balance.as_dict() if balance else {"available": 0, "pending": 0}


class LedgerEntryOutSerializer(serializers.ModelSerializer):
    purchase = serializers.CharField(source="purchase.external_id", default=None)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "points", "created_at", "expires_at", "purchase", "reason"]


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

"""The purchase transaction and member look-ups through the ORM, with DRF and nothing else.

Each view is what a framework user would write: an APIView, a plain Serializer, the ORM. A
look-up is one statement; a purchase is the rows ``record_purchase`` reads and writes (the
member locked, the lots it spends with their allocations, the receipt, the earned lot, the
ledger entries, the member's cached balance), without the product's rules.
"""

from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.db.models import F, FilteredRelation, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.models import LedgerEntry, LotAllocation, PointsLot, Purchase
from members.models import Member


class PurchaseIn(serializers.Serializer):
    external_id = serializers.CharField(max_length=64)
    card_number = serializers.CharField(max_length=13)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    redeem_points = serializers.IntegerField(min_value=0, default=0)


class TierOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class BalanceOut(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField()


class MemberOut(serializers.Serializer):
    """The member as the product's API shows it, from the attributes ``members()`` reads."""

    card_number = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    phone = serializers.CharField()
    email = serializers.CharField()
    birth_date = serializers.DateField()
    tier = TierOut()
    balance = BalanceOut(source="*")
    status = serializers.CharField()
    marketing_consent = serializers.BooleanField()
    referral_code = serializers.CharField()
    enrolled_at = serializers.DateTimeField()


def members():
    """Members with their tier and balance, in ONE statement: the member row joined to its tier
    and to its lots with points left (the product's look-up reads the same rows:
    ``locking.member_with_balance``), the sums as of now, debt taken from what is available."""
    now = timezone.now()
    return (
        Member.objects.select_related("tier")
        .alias(open_lots=FilteredRelation("lots", condition=Q(lots__remaining__gt=0)))
        .annotate(
            available=Coalesce(
                Sum(
                    "open_lots__remaining",
                    filter=Q(open_lots__available_from__lte=now, open_lots__expires_at__gt=now),
                ),
                0,
            )
            - F("points_debt"),
            pending=Coalesce(
                Sum("open_lots__remaining", filter=Q(open_lots__available_from__gt=now)), 0
            ),
        )
    )


class MemberView(APIView):
    def get(self, request, card_number):
        return Response(MemberOut(members().get(card_number=card_number)).data)


class MemberByPhoneView(APIView):
    def get(self, request):
        member = members().get(phone=request.query_params["phone"])
        return Response({"count": 1, "results": [MemberOut(member).data]})


class PurchaseView(APIView):
    def post(self, request):
        data = PurchaseIn(data=request.data)
        data.is_valid(raise_exception=True)
        data = data.validated_data
        now = timezone.now()
        redeem = data["redeem_points"]
        with transaction.atomic():
            member = (
                Member.objects.select_for_update(no_key=True, of=("self",))
                .select_related("tier")
                .get(card_number=data["card_number"])
            )
            paid = data["amount"] - redeem
            earned = int((paid * member.tier.earn_rate).to_integral_value(rounding=ROUND_FLOOR))
            purchase = Purchase.objects.create(
                store_id=1,
                external_id=data["external_id"],
                member=member,
                occurred_at=now,
                amount=data["amount"],
                redeemed_points=redeem,
                redeemed_value=Decimal(redeem),
                paid_amount=paid,
                earned_points=earned,
                tier=member.tier,
                qualifying_amount=paid,
            )
            if redeem:
                left = redeem
                allocations = []
                # A lot holds at least one point: never more lots than points are needed.
                lots = PointsLot.objects.filter(
                    member=member, remaining__gt=0, available_from__lte=now, expires_at__gt=now
                ).order_by("expires_at", "id")[:redeem]
                for lot in lots:
                    take = min(lot.remaining, left)
                    PointsLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
                    allocations.append(LotAllocation(purchase=purchase, lot=lot, points=take))
                    left -= take
                    if not left:
                        break
                if left:
                    raise ValueError("insufficient points")
                LotAllocation.objects.bulk_create(allocations)
                LedgerEntry.objects.create(
                    member=member,
                    kind="redeem",
                    account="redeemed",
                    points=-redeem,
                    purchase=purchase,
                    created_at=now,
                )
            if earned:
                expires = now + timedelta(days=365)
                lot = PointsLot.objects.create(
                    member=member,
                    points=earned,
                    remaining=earned,
                    available_from=now,
                    expires_at=expires,
                    purchase=purchase,
                )
                LedgerEntry.objects.create(
                    member=member,
                    kind="earn",
                    account="issued",
                    points=earned,
                    purchase=purchase,
                    lot=lot,
                    expires_at=expires,
                    created_at=now,
                )
            Member.objects.filter(pk=member.pk).update(
                points_balance=F("points_balance") + earned - redeem
            )
        return Response(
            {
                "external_id": purchase.external_id,
                "card_number": member.card_number,
                "amount": str(purchase.amount),
                "redeemed_points": redeem,
                "paid_amount": str(paid),
                "earned_points": earned,
                "balance": member.points_balance + earned - redeem,
            },
            status=201,
        )

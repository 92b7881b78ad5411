"""API v1 views: validate with a serializer, call one service, answer."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api import serializers as s
from loyalty.api.base import ERRORS, one_query_value, validated
from loyalty.api.schema import ANY_TEXT
from loyalty.engine import ledger
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import member_with_balance
from loyalty.engine.memberships import cancel_membership, join_membership
from loyalty.engine.money import money_str
from loyalty.engine.pricing import check_coupon, quote_purchase
from loyalty.engine.purchases import record_purchase
from loyalty.engine.refunds import refund_purchase
from loyalty.engine.tiers import has_perk, perks_of
from loyalty.models import LedgerEntry, Membership, MembershipPlan, Perk
from members.models import Member
from members.personal_data import erase_personal_data, export_personal_data
from members.services import enrol_member, normalise_phone


def member_body(member, balance):
    """The member as the API shows it (documented by MemberOutSerializer): a ``Member`` or the
    look-up's ``MemberRead`` (whose phone is the stored E.164 text)."""
    phone = member.phone
    return {
        "card_number": member.card_number,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "phone": (phone if isinstance(phone, str) else phone.as_e164) if phone else None,
        "email": member.email,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "tier": {"code": member.tier.code, "name": member.tier.name},
        "perks": perks_of(member.tier),
        "balance": balance.as_dict(),
        "status": member.status,
        "marketing_consent": member.marketing_consent,
        "referral_code": member.referral_code,
        "enrolled_at": timezone.localtime(member.enrolled_at).isoformat(),
    }


def member_response(member, status_code=200):
    balance = getattr(member, "balance", None) or ledger.balance_of(member, timezone.now())
    return Response(member_body(member, balance), status=status_code)


def get_member_or_404(card_number):
    """The member behind a card with its balance, in one statement."""
    member = member_with_balance("card_number", card_number, timezone.now())
    if member is None:
        raise LoyaltyError(
            "member_not_found",
            _("No member has card %(card)s.") % {"card": card_number},
            status_code=404,
        )
    return member


class MembersView(APIView):
    @extend_schema(
        request=s.EnrolSerializer,
        responses={201: s.MemberOutSerializer, **ERRORS},
        summary="Enrol a member",
    )
    def post(self, request):
        data = validated(s.EnrolSerializer, request)
        member = enrol_member(
            **data,
            store=request.user.store,
            channel=Member.Channel.STORE,
        )
        member = Member.objects.select_related("tier").get(pk=member.pk)
        return member_response(member, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "phone",
                {"type": "string", "pattern": ANY_TEXT},
                description="Phone in E.164 or national format (+7 912 345-67-89, 8 912 …). "
                "Give phone, email or both; a phone that is no valid number is refused with 400.",
            ),
            OpenApiParameter(
                "email",
                {"type": "string", "maxLength": 254, "pattern": ANY_TEXT},
                description="E-mail, matched without regard to case.",
            ),
        ],
        responses={200: s.MemberListOutSerializer, **ERRORS},
        summary="Look up members by phone or e-mail",
        operation_id="members_lookup",
        description="At most 50 members, as `{count, results}`; no match is `count` 0.",
    )
    def get(self, request):
        phone = (one_query_value(request, "phone") or "").strip()
        email = (one_query_value(request, "email") or "").strip()
        if not phone and not email:
            raise LoyaltyError(
                "invalid",
                _("Give a phone or an e-mail to look up."),
                fields={"phone": [str(_("Give a phone or an e-mail."))]},
                status_code=400,
            )
        if phone and not email:  # the counter's look-up: one member, the lean way
            member = member_with_balance("phone", normalise_phone(phone), timezone.now())
            if member is None:
                return Response({"count": 0, "results": []})
            body = member_body(member, member.balance)
            return Response({"count": 1, "results": [body]})
        members = Member.objects.select_related("tier").order_by("id")
        if phone:
            members = members.filter(phone=normalise_phone(phone))
        if email:
            if len(email) > 254:
                raise LoyaltyError("invalid", _("Enter a valid e-mail."), status_code=400)
            members = members.filter(email__iexact=email)
        members = list(members[:50])
        now = timezone.now()
        balances = {member.pk: ledger.balance_of(member, now) for member in members}
        data = s.MemberOutSerializer(members, many=True, context={"balances": balances}).data
        return Response({"count": len(data), "results": data})


CARD_NUMBER_PARAMETER = OpenApiParameter(
    "card_number",
    {"type": "string", "pattern": s.CARD_NUMBER_PATTERN},
    OpenApiParameter.PATH,
    description="The member's card: 13 digits, the last a Luhn check digit (else 404).",
)


class MemberDetailView(APIView):
    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        responses={200: s.MemberOutSerializer, **ERRORS},
        summary="A member",
    )
    def get(self, request, card_number):
        return member_response(get_member_or_404(card_number))


class MemberPersonalDataView(APIView):
    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        responses={200: s.PersonalDataOutSerializer, **ERRORS},
        summary="All of a member's personal data, as one file (audited)",
        description="The member's request for their data (152-FZ, GDPR): profile, consent "
        "history with the text shown, purchases with lines and refunds, ledger, messages, "
        "survey answers and complaints. Each call is written to the audit log with the key.",
    )
    def get(self, request, card_number):
        member = get_member_or_404(card_number)
        return Response(export_personal_data(member_id=member.id, api_key=request.user.key))


class MemberErasureView(APIView):
    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        request=s.ErasureSerializer,
        responses={200: s.ErasureOutSerializer, **ERRORS},
        summary="Erase a member's personal data (idempotent, audited)",
        description="At the member's request: name, phone, e-mail, birth date and free text "
        "about them are erased, marketing consent withdrawn, waiting messages cancelled and the "
        "card blocked; points, purchases and the ledger stay. The phone is free to enrol again. "
        "Erasing an erased member answers the same again and changes nothing.",
    )
    def post(self, request, card_number):
        data = validated(s.ErasureSerializer, request)
        member = get_member_or_404(card_number)
        member = erase_personal_data(
            member_id=member.id, reason=data["reason"], api_key=request.user.key
        )
        return Response(
            {
                "card_number": member.card_number,
                "status": member.status,
                "erased_at": timezone.localtime(member.erased_at).isoformat(),
            }
        )


class LedgerPagination(CursorPagination):
    ordering = ("-id",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        """A page_size that is not one whole number from 1 to 200 is refused (DRF ignores it)."""
        raw = one_query_value(request, self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            message = _("Give a whole number from 1 to %(max)s.") % {"max": self.max_page_size}
            raise LoyaltyError(
                "invalid",
                _("The request has invalid fields."),
                fields={"page_size": [str(message)]},
                status_code=400,
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=50)
            if parameter["name"] == self.cursor_query_param:  # HostileUrlMiddleware refuses NUL
                parameter["schema"].update(pattern=ANY_TEXT)
        return parameters


class MemberLedgerView(APIView):
    pagination_class = LedgerPagination

    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        responses={200: s.LedgerEntryOutSerializer(many=True), **ERRORS},
        summary="A member's ledger, newest first",
    )
    def get(self, request, card_number):
        member = get_member_or_404(card_number)
        entries = (
            LedgerEntry.objects.filter(member_id=member.id)
            .select_related("purchase")
            .only(
                "id",
                "kind",
                "points",
                "created_at",
                "expires_at",
                "reason",
                "purchase__external_id",
            )
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(s.LedgerEntryOutSerializer(page, many=True).data)


# What a schema-valid basket can still be refused for: rules about data the schema cannot know.
BASKET_RULES = (
    "A basket the schema allows may still break a rule about the data, refused with 422 and "
    "`error.code` naming it: more points than the member has or the program lets one purchase "
    "spend (`insufficient_points`, `redeem_limit_exceeded`), a coupon_code that is unknown, "
    "inactive or does not apply (`coupon_not_applicable`), a blocked member (`member_blocked`). "
    "An unknown card_number is 404."
)


class QuoteView(APIView):
    @extend_schema(
        request=s.QuoteSerializer,
        responses={200: s.QuoteOutSerializer, **ERRORS},
        summary="Quote a purchase without recording it",
        description=BASKET_RULES,
    )
    def post(self, request):
        data = validated(s.QuoteSerializer, request)
        quote = quote_purchase(
            card_number=data["card_number"],
            amount=data["amount"],
            lines=data.get("lines", ()),
            redeem_points=data["redeem_points"],
            coupon_code=data["coupon_code"],
            store=request.user.store,
        )
        return Response(
            {
                "amount": money_str(quote.amount),
                "discount_amount": money_str(quote.discount_amount),
                "earn_points": quote.earn_points,
                "max_redeem_points": quote.max_redeem_points,
                "redeem_points": quote.redeem_points,
                "payable_amount": money_str(quote.payable_amount),
                "free_delivery": has_perk(quote.tier, Perk.FREE_DELIVERY),
            }
        )


class PurchasesView(APIView):
    @extend_schema(
        request=s.PurchaseSerializer,
        responses={201: s.PurchaseOutSerializer, **ERRORS},
        summary="Record a purchase (idempotent by external_id)",
        description=BASKET_RULES
        + " The same external_id with other details is 409 (`idempotency_conflict`).",
    )
    def post(self, request):
        data = validated(s.PurchaseSerializer, request)
        outcome = record_purchase(
            store=request.user.store,
            external_id=data["external_id"],
            card_number=data["card_number"],
            amount=data["amount"],
            occurred_at=data["occurred_at"],
            channel=data["channel"],
            lines=data.get("lines", ()),
            redeem_points=data["redeem_points"],
            coupon_code=data["coupon_code"],
        )
        return Response(outcome.body, status=outcome.status)


def text_path_parameter(name, description):
    """A path segment of free text: any but NUL, which HostileUrlMiddleware refuses with 400."""
    return OpenApiParameter(
        name,
        {"type": "string", "pattern": ANY_TEXT},
        OpenApiParameter.PATH,
        description=description,
    )


class RefundsView(APIView):
    @extend_schema(
        parameters=[text_path_parameter("external_id", "The purchase's external_id (else 404).")],
        request=s.RefundSerializer,
        responses={201: s.RefundOutSerializer, **ERRORS},
        summary="Refund all or part of a purchase (idempotent by refund_id)",
        description="The amount may be at most what remains of the purchase once its earlier "
        "refunds are taken off; more is refused with 422 (`refund_exceeds_purchase`). An unknown "
        "purchase is 404; the same refund_id with other details is 409 (`idempotency_conflict`).",
    )
    def post(self, request, external_id):
        data = validated(s.RefundSerializer, request)
        outcome = refund_purchase(
            store=request.user.store,
            external_id=external_id,
            refund_id=data["refund_id"],
            amount=data["amount"],
        )
        return Response(outcome.body, status=outcome.status)


class CouponValidateView(APIView):
    @extend_schema(
        parameters=[text_path_parameter("code", "The coupon's code (else 404).")],
        request=s.CouponCheckSerializer,
        responses={200: s.CouponCheckOutSerializer, **ERRORS},
        summary="Whether a coupon applies to a member and basket, and its effect",
    )
    def post(self, request, code):
        data = validated(s.CouponCheckSerializer, request)
        try:
            effect = check_coupon(
                code=code,
                card_number=data["card_number"],
                amount=data["amount"],
                lines=data.get("lines", ()),
            )
        except LoyaltyError as error:
            if error.code != "coupon_not_applicable":
                raise
            return Response(
                {
                    "code": code,
                    "applicable": False,
                    "reason": str(error.message),
                    "kind": None,
                    "discount_amount": "0.00",
                }
            )
        return Response(
            {
                "code": effect.coupon.code,
                "applicable": True,
                "reason": "",
                "kind": effect.coupon.kind,
                "discount_amount": money_str(effect.discount),
            }
        )


def plan_body(plan):
    return {
        "code": plan.code,
        "name": plan.display_name(),
        "fee": money_str(plan.fee),
        "period_days": plan.period_days,
        "trial_days": plan.trial_days,
        "tier": plan.tier.code if plan.tier else None,
        "bonus_points": plan.bonus_points,
        "perks": list(plan.perks or []),
    }


def membership_body(membership):
    period = membership.periods.order_by("-starts_at").first()
    return {
        "plan": membership.plan.code,
        "status": membership.status,
        "auto_renew": membership.auto_renew,
        "started_at": timezone.localtime(membership.started_at).isoformat(),
        "period_end": timezone.localtime(membership.period_end).isoformat(),
        "fee": money_str(period.fee if period else 0),
    }


def live_membership(member):
    return (
        Membership.objects.filter(member_id=member.id, status__in=["trial", "active"])
        .select_related("plan")
        .first()
    )


def no_membership(card_number):
    return LoyaltyError(
        "no_membership",
        _("Card %(card)s has no live membership.") % {"card": card_number},
        status_code=422,
    )


class MembershipPlansView(APIView):
    @extend_schema(
        responses={200: s.MembershipPlanListSerializer, **ERRORS},
        summary="The paid membership plans on sale",
    )
    def get(self, request):
        plans = MembershipPlan.objects.filter(is_active=True).select_related("tier")
        return Response({"results": [plan_body(plan) for plan in plans]})


class MemberMembershipView(APIView):
    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        responses={200: s.MemberMembershipOutSerializer, **ERRORS},
        summary="The member's live paid membership (`null` without one)",
    )
    def get(self, request, card_number):
        membership = live_membership(get_member_or_404(card_number))
        return Response({"membership": membership_body(membership) if membership else None})

    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        request=s.MembershipJoinSerializer,
        responses={201: s.MembershipOutSerializer, **ERRORS},
        summary="Join a paid membership plan, or start its free trial (audited)",
        description="The fee is recorded per period; collecting it is the till's business. "
        "Refusals: 409 `membership_exists` (one live membership per member), 422 "
        "`plan_not_available`, `trial_not_available` (no trial, or already had one), "
        "`member_blocked`. A refused call changes nothing.",
    )
    def post(self, request, card_number):
        data = validated(s.MembershipJoinSerializer, request)
        member = get_member_or_404(card_number)
        plan = MembershipPlan.objects.filter(code=data["plan"]).only("pk").first()
        membership = join_membership(
            member_id=member.id,
            plan_id=plan.pk if plan else None,
            trial=data["trial"],
            reason=f"API: {request.user.key.name}",
        )
        return Response(membership_body(membership), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[CARD_NUMBER_PARAMETER],
        responses={200: s.MembershipOutSerializer, **ERRORS},
        summary="Cancel the renewal: the membership runs to the end of the period paid (audited)",
        description="Cancelling a cancelled renewal answers the same again and changes nothing; "
        "a card without a live membership is 422 `no_membership`.",
    )
    def delete(self, request, card_number):
        membership = live_membership(get_member_or_404(card_number))
        if membership is None:
            raise no_membership(card_number)
        membership = cancel_membership(
            membership_id=membership.pk, reason=f"API: {request.user.key.name}"
        )
        return Response(membership_body(membership))

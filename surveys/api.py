"""API v1: survey answers collected elsewhere, and complaints from other channels."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.serializers import CardNumberField, StrictSerializer
from loyalty.api.views import ERRORS, validated
from loyalty.engine.errors import LoyaltyError
from members.models import Member
from surveys.models import ChurnReason, Complaint, ComplaintCategory
from surveys.services import answer_survey, open_complaint


class SurveyAnswerSerializer(StrictSerializer):
    token = serializers.CharField(min_length=1, max_length=100)
    score = serializers.IntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    reason = serializers.ChoiceField(
        choices=ChurnReason.choices, required=False, allow_blank=True, default=""
    )
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class SurveyAnswerOutSerializer(serializers.Serializer):
    survey = serializers.CharField()
    score = serializers.IntegerField(allow_null=True)
    group = serializers.CharField()
    complaint_opened = serializers.BooleanField()


class SurveyResponsesView(APIView):
    @extend_schema(
        request=SurveyAnswerSerializer,
        responses={201: SurveyAnswerOutSerializer, **ERRORS},
        summary="Record a survey answer collected in another channel (single-use token)",
    )
    def post(self, request):
        data = validated(SurveyAnswerSerializer, request)
        response = answer_survey(
            token=data["token"],
            score=data.get("score"),
            reason=data["reason"],
            comment=data["comment"],
            source="api",
        )
        return Response(
            {
                "survey": response.survey.code,
                "score": response.score,
                "group": response.group,
                "complaint_opened": hasattr(response, "complaint"),
            },
            status=201,
        )


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[-a-zA-Z0-9_]+$",
        "maxLength": 32,
        "example": "other",
        "description": "A complaint category's code from the merchant's list (by default "
        "delivery, other, points, product, service); an unknown code is refused with 400.",
    }
)
class CategoryField(serializers.SlugField):
    pass


class ComplaintInSerializer(StrictSerializer):
    card_number = CardNumberField(required=False, allow_null=True, default=None)
    category = CategoryField(max_length=32)
    subject = serializers.CharField(min_length=1, max_length=200)
    description = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default=""
    )


class ComplaintOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    due_at = serializers.DateTimeField()


class ComplaintsView(APIView):
    @extend_schema(
        request=ComplaintInSerializer,
        responses={201: ComplaintOutSerializer, **ERRORS},
        summary="Open a complaint case (e.g. from an app or the web shop)",
    )
    def post(self, request):
        data = validated(ComplaintInSerializer, request)
        category = ComplaintCategory.objects.filter(code=data["category"]).first()
        if category is None:
            raise LoyaltyError(
                "invalid",
                _("Unknown category."),
                fields={
                    "category": [
                        _("One of: %(codes)s")
                        % {
                            "codes": ", ".join(
                                ComplaintCategory.objects.values_list("code", flat=True)
                            )
                        }
                    ]
                },
                status_code=400,
            )
        member = None
        if data["card_number"]:
            member = Member.objects.filter(card_number=data["card_number"]).first()
            if member is None:
                raise LoyaltyError("member_not_found", "No member has this card.", status_code=404)
        complaint = open_complaint(
            member=member,
            category=category,
            subject=data["subject"],
            description=data["description"],
            source=Complaint.Source.API,
            store=request.user.store if request.user.store.kind == "store" else None,
        )
        return Response(
            {
                "id": complaint.pk,
                "status": complaint.status,
                "due_at": complaint.due_at.isoformat(),
            },
            status=201,
        )

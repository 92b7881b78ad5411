"""Surveys and complaints in the admin: categories changed here (audited), the rest read."""

from django.contrib import admin
from django.urls import reverse

from loyalty.web.admin_base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    name_shown,
    shown_as_code,
    shown_in,
)
from surveys.models import Complaint, ComplaintCategory, Survey, SurveyResponse


@admin.register(ComplaintCategory)
class ComplaintCategoryAdmin(AuditedAdmin):
    audit_action = "complaint_category"
    fields = ("code", "name", "name_ru", "sla_hours")
    list_display = ("code_code", "name_shown", "sla_hours")
    code_code = shown_as_code(ComplaintCategory, "code")
    name_shown = name_shown


@admin.register(Survey)
class SurveyAdmin(ReadOnlyAdmin):
    capability = "loyalty.manage_surveys"
    list_display = ("code_code", "kind", "name_shown", "delay_days", "sampling_rate", "is_active")
    list_filter = ("kind", "is_active")
    fields = (
        "code_code",
        "kind",
        "name_en",
        "name_ru",
        "question_ru",
        "question_en_shown",
        "follow_up_detractor_ru",
        "follow_up_detractor_en_shown",
        "follow_up_passive_ru",
        "follow_up_passive_en_shown",
        "follow_up_promoter_ru",
        "follow_up_promoter_en_shown",
        "delay_days",
        "sampling_rate",
        "cooldown_days",
        "reminder_after_days",
        "link_valid_days",
        "is_active",
    )
    readonly_fields = [name for name in fields if name.endswith(("_code", "_shown", "_en"))]
    code_code = shown_as_code(Survey, "code")
    name_shown = name_shown
    name_en = shown_in("en", Survey, "name")
    question_en_shown = shown_in("en", Survey, "question_en")
    follow_up_detractor_en_shown = shown_in("en", Survey, "follow_up_detractor_en")
    follow_up_passive_en_shown = shown_in("en", Survey, "follow_up_passive_en")
    follow_up_promoter_en_shown = shown_in("en", Survey, "follow_up_promoter_en")

    def view_on_site(self, obj):
        return reverse("surveys:survey-edit", args=[obj.pk])


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ReadOnlyAdmin):
    capability = "loyalty.manage_surveys"
    list_display = ("answered_at", "survey", "member", "score", "group", "store")
    list_select_related = ("survey", "member", "store")
    list_filter = ("group",)
    raw_id_fields = ("member", "invitation")
    exclude = ("channel", "source")
    readonly_fields = ("channel_code", "source_code")
    channel_code = shown_as_code(SurveyResponse, "channel")
    source_code = shown_as_code(SurveyResponse, "source")


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    capability = "loyalty.handle_complaints"
    list_display = ("created_at", "subject", "member", "category", "status", "assignee", "due_at")
    list_select_related = ("member", "category", "assignee")
    list_filter = ("status", "category")
    search_fields = ("=member__card_number", "subject")
    raw_id_fields = ("member", "survey_response")

    def view_on_site(self, obj):
        return reverse("complaints:complaint-detail", args=[obj.pk])

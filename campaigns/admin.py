"""Campaigns and segments in the admin: read here; built, scheduled and cancelled on their pages."""

from django.contrib import admin
from django.urls import reverse

from campaigns.models import Campaign, CampaignVariant, Segment
from loyalty.web.admin_base import ReadOnlyAdmin, ReadOnlyInline, shown_as_code, shown_in


class VariantInline(ReadOnlyInline):
    model = CampaignVariant
    fields = (
        "number",
        "share",
        "points",
        "factor",
        "coupon_value",
        "subject_ru",
        "subject_en_shown",
    )
    readonly_fields = ("subject_en_shown",)
    subject_en_shown = shown_in("en", CampaignVariant, "subject_en")


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    capability = "loyalty.manage_campaigns"
    list_display = ("name", "kind", "status", "segment", "scheduled_at", "sent_at", "total")
    list_select_related = ("segment",)
    list_filter = ("kind", "status")
    search_fields = ("name",)
    raw_id_fields = ("parent",)
    inlines = [VariantInline]
    exclude = ("subject_en", "message_en", "definition", "coupon_sku")
    readonly_fields = ("subject_en_shown", "message_en_shown", "definition_code", "coupon_sku_code")
    subject_en_shown = shown_in("en", Campaign, "subject_en")
    message_en_shown = shown_in("en", Campaign, "message_en")
    definition_code = shown_as_code(Campaign, "definition")
    coupon_sku_code = shown_as_code(Campaign, "coupon_sku")

    def view_on_site(self, obj):
        return reverse("campaigns:campaign-detail", args=[obj.pk])


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    capability = "loyalty.manage_campaigns"
    list_display = ("name", "created_by", "updated_at")
    search_fields = ("name",)
    exclude = ("definition",)
    readonly_fields = ("definition_code",)
    definition_code = shown_as_code(Segment, "definition")

    def view_on_site(self, obj):
        return reverse("campaigns:segment-edit", args=[obj.pk])

"""Members in the admin: read here; enrolled, changed, blocked, merged and erased on their pages."""

from django.contrib import admin
from django.urls import reverse

from loyalty.web.admin_base import ReadOnlyAdmin, ReadOnlyInline, shown_as_code
from members.models import ConsentEvent, ImportJob, Member


class ConsentEventInline(ReadOnlyInline):
    model = ConsentEvent
    fields = ("created_at", "given", "source", "text", "staff")


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = (
        "card_number",
        "first_name",
        "last_name",
        "phone",
        "tier",
        "points_balance",
        "status",
        "enrolled_at",
    )
    list_select_related = ("tier",)
    list_filter = ("status", "tier", "enrolment_channel")
    search_fields = ("=card_number", "=phone", "=email", "^last_name")
    exclude = ("search_text", "language", "referral_code")
    readonly_fields = ("language_code", "referral_code_code")
    language_code = shown_as_code(Member, "language")
    referral_code_code = shown_as_code(Member, "referral_code")
    raw_id_fields = ("referred_by", "merged_into", "enrolled_by")
    inlines = [ConsentEventInline]

    def view_on_site(self, obj):
        return reverse("members:member-detail", args=[obj.card_number])


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("original_name_code", "kind", "status", "total", "imported", "error_count")
    list_filter = ("kind", "status")
    exclude = ("file", "error_report", "original_name")
    readonly_fields = ("original_name_code",)
    original_name_code = shown_as_code(ImportJob, "original_name")

    def view_on_site(self, obj):
        return reverse("members:import-detail", args=[obj.pk])

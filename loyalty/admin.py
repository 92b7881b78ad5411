"""The admin of the program's own tables (see loyalty/web/admin_base.py for the two kinds)."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from loyalty.engine.administration import save_staff_user
from loyalty.engine.apikeys import revoke_api_key
from loyalty.models import (
    ApiKey,
    AuditLog,
    Coupon,
    CouponRedemption,
    JobRun,
    LedgerEntry,
    Membership,
    MembershipPlan,
    PointsLot,
    ProductRule,
    ProgramSettings,
    Purchase,
    PurchaseLine,
    Refund,
    Store,
    Tier,
    User,
)
from loyalty.roles import ROLE_LABELS, role_of
from loyalty.web.admin_base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    SingletonAdmin,
    name_shown,
    shown_as_code,
)
from loyalty.web.admin_forms import ProgramSettingsForm, StaffForm, StoreForm, TierForm


class MemberRowsAdmin(ReadOnlyAdmin):
    """Rows of one member: "view on site" opens the member's page, where members are changed."""

    def view_on_site(self, obj):
        member = obj.member
        return reverse("members:member-detail", args=[member.card_number]) if member else None


# --- Rules: changed here as on the back-office pages, through the same service ------------------


@admin.register(Store)
class StoreAdmin(AuditedAdmin):
    form = StoreForm
    audit_action = "store"
    list_display = ("code", "name", "city", "kind", "earn_rate", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name", "city")
    ordering = ("code",)


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(SingletonAdmin):
    form = ProgramSettingsForm
    audit_action = "program"
    list_display = ("__str__", "point_value", "expiry_days", "tier_qualification")


@admin.register(Tier)
class TierAdmin(AuditedAdmin):
    form = TierForm
    audit_action = "tier"
    list_display = ("code_code", "name_shown", "threshold", "earn_rate", "discount_percent")
    ordering = ("threshold",)
    code_code = shown_as_code(Tier, "code")
    name_shown = name_shown


@admin.register(ProductRule)
class ProductRuleAdmin(AuditedAdmin):
    audit_action = "product_rule"
    fields = ("kind", "category", "sku", "multiplier", "is_active")
    list_display = ("kind", "category_code", "sku_code", "multiplier", "is_active")
    category_code = shown_as_code(ProductRule, "category")
    sku_code = shown_as_code(ProductRule, "sku")
    list_filter = ("kind", "is_active")
    search_fields = ("category", "sku")


@admin.register(MembershipPlan)
class MembershipPlanAdmin(AuditedAdmin):
    audit_action = "membership_plan"
    fields = (
        "code",
        "name",
        "name_ru",
        "fee",
        "period_days",
        "trial_days",
        "tier",
        "bonus_points",
        "is_active",
    )
    list_display = (
        "code_code",
        "name_shown",
        "fee",
        "period_days",
        "trial_days",
        "tier",
        "is_active",
    )
    code_code = shown_as_code(MembershipPlan, "code")
    name_shown = name_shown
    list_filter = ("is_active",)


@admin.register(User)
class StaffAdmin(AuditedAdmin):
    """Staff accounts: role and stores set by ``save_staff_user``, as on the staff page."""

    capability = "loyalty.manage_staff"
    form = StaffForm
    list_display = ("username", "first_name", "last_name", "email", "role", "is_active")
    list_filter = ("is_active",)
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("Role"))
    def role(self, user):
        return ROLE_LABELS.get(role_of(user), "")

    def save_service(self, request, form):
        save_staff_user(
            user=form.instance,
            role=form.cleaned_data["role"],
            stores=list(form.cleaned_data["stores"]),
            password=form.cleaned_data["password"],
            staff=request.user,
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are made on the API keys page (the key is shown once there); revoked here too."""

    capability = "loyalty.manage_api_keys"
    list_display = ("prefix", "name", "store", "created_at", "last_used_at", "revoked_at")
    list_filter = ("store",)
    list_select_related = ("store",)
    exclude = ("key_hash",)
    actions = ["revoke"]

    def view_on_site(self, obj):
        return reverse("loyalty:apikey-list")

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for key_id in keys:
            revoke_api_key(key_id=key_id, staff=request.user)
        self.message_user(
            request,
            ngettext("%(count)d key revoked.", "%(count)d keys revoked.", len(keys))
            % {"count": len(keys)},
            messages.SUCCESS,
        )

    def get_actions(self, request):
        # The action list is the admin's own; revoking needs the capability, as on the page.
        actions = super().get_actions(request)
        if not request.user.has_perm(self.capability):
            actions.pop("revoke", None)
        return actions


# --- The ledger and its history: append-only, read here -----------------------------------------


class PurchaseLineInline(ReadOnlyInline):
    model = PurchaseLine
    fields = ("sku_code", "category_code", "quantity", "unit_price", "amount")
    readonly_fields = fields
    sku_code = shown_as_code(PurchaseLine, "sku")
    category_code = shown_as_code(PurchaseLine, "category")


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("refund_id", "amount", "reversed_points", "returned_points", "created_at")


@admin.register(Purchase)
class PurchaseAdmin(MemberRowsAdmin):
    list_display = (
        "external_id",
        "store",
        "member",
        "occurred_at",
        "amount",
        "earned_points",
        "redeemed_points",
        "refunded_amount",
    )
    list_select_related = ("store", "member")
    list_filter = ("channel", "store")
    search_fields = ("=external_id", "=member__card_number")
    date_hierarchy = "occurred_at"
    exclude = ("fingerprint", "response")
    raw_id_fields = ("member",)
    inlines = [PurchaseLineInline, RefundInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(MemberRowsAdmin):
    list_display = ("created_at", "member", "kind", "account", "points", "reason", "staff")
    list_select_related = ("member", "staff")
    list_filter = ("kind", "account")
    search_fields = ("=member__card_number",)
    raw_id_fields = ("member", "purchase", "refund", "lot")


@admin.register(PointsLot)
class PointsLotAdmin(MemberRowsAdmin):
    list_display = ("member", "points", "remaining", "available_from", "expires_at", "created_at")
    list_select_related = ("member",)
    search_fields = ("=member__card_number",)
    raw_id_fields = ("member", "purchase")


@admin.register(Coupon)
class CouponAdmin(MemberRowsAdmin):
    list_display = (
        "code",
        "kind",
        "value",
        "member",
        "valid_until",
        "uses",
        "max_uses",
        "is_active",
    )
    exclude = ("sku",)
    readonly_fields = ("sku_code",)
    sku_code = shown_as_code(Coupon, "sku")
    list_select_related = ("member",)
    list_filter = ("kind", "is_active")
    search_fields = ("=code", "=member__card_number")
    raw_id_fields = ("member",)


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(MemberRowsAdmin):
    list_display = ("coupon", "purchase", "member", "discount_amount", "created_at")
    list_select_related = ("coupon", "purchase", "member")
    raw_id_fields = ("coupon", "purchase", "member")


@admin.register(Membership)
class MembershipAdmin(MemberRowsAdmin):
    list_display = ("member", "plan", "status", "period_start", "period_end", "auto_renew")
    list_select_related = ("member", "plan")
    list_filter = ("status", "plan")
    raw_id_fields = ("member",)


@admin.register(AuditLog)
class AuditLogAdmin(MemberRowsAdmin):
    capability = "loyalty.view_audit"
    list_display = ("created_at", "actor", "action_code", "member", "object_type_code", "object_id")
    list_select_related = ("actor", "member")
    fields = (
        "created_at",
        "actor",
        "action_code",
        "member",
        "object_type_code",
        "object_id",
        "reason",
        "before_code",
        "after_code",
    )
    readonly_fields = ("action_code", "object_type_code", "before_code", "after_code")
    action_code = shown_as_code(AuditLog, "action")
    object_type_code = shown_as_code(AuditLog, "object_type")
    before_code = shown_as_code(AuditLog, "before")
    after_code = shown_as_code(AuditLog, "after")
    search_fields = ("=action", "=member__card_number", "=actor__username")
    raw_id_fields = ("member",)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    capability = "loyalty.run_jobs"
    list_display = ("job_code", "as_of", "status", "trigger", "started_at", "finished_at", "rows")
    list_filter = ("status",)
    fields = (
        "job_code",
        "as_of",
        "status",
        "trigger",
        "started_by",
        "started_at",
        "finished_at",
        "rows",
        "batches",
        "counts_code",
        "error",
    )
    readonly_fields = ("job_code", "counts_code")
    job_code = shown_as_code(JobRun, "job")
    counts_code = shown_as_code(JobRun, "counts")

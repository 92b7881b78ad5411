"""Sign-in, the home page, and the pages every role shares."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loyalty.engine.administration import save_staff_user, save_with_audit
from loyalty.engine.apikeys import create_api_key, revoke_api_key
from loyalty.models import (
    ApiKey,
    AuditLog,
    MembershipPlan,
    ProductRule,
    ProgramSettings,
    Store,
    Tier,
    User,
)
from loyalty.roles import ROLE_LABELS
from loyalty.web.access import require
from loyalty.web.admin_forms import (
    ApiKeyForm,
    MembershipPlanForm,
    ProductRuleForm,
    ProgramSettingsForm,
    StaffForm,
    StoreForm,
    TierForm,
)
from loyalty.web.filters import AuditLogFilterSet
from loyalty.web.forms import LoginForm


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@login_required
def home(request):
    from members.queries import stores_for, today_figures

    context = {}
    if request.user.has_perm("loyalty.view_members"):
        context["today"] = today_figures(request.user, timezone.now())
        context["my_stores"] = list(stores_for(request.user).filter(is_active=True))
    return render(request, "loyalty/home.html", context)


def _is_api(request):
    return request.path.startswith("/api/")


def _error_page(template_name, status):
    """An error page in the product's look and the reader's language, rendered without the
    request: no context processor runs, so the page needs no database (the cause of a 500 may
    be the database)."""
    return HttpResponse(loader.get_template(template_name).render(), status=status)


def page_not_found(request, exception):
    if _is_api(request):
        return JsonResponse(
            {"error": {"code": "not_found", "message": _("Not found."), "fields": {}}}, status=404
        )
    return _error_page("404.html", 404)


def permission_denied(request, exception):
    if _is_api(request):
        return JsonResponse(
            {"error": {"code": "permission_denied", "message": _("Forbidden."), "fields": {}}},
            status=403,
        )
    return _error_page("403.html", 403)


def server_error(request):
    if _is_api(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": _("Server error."), "fields": {}}},
            status=500,
        )
    return _error_page("500.html", 500)


# --- Administration -----------------------------------------------------------------------------


@require("loyalty.manage_program")
def store_list(request):
    stores = Store.objects.annotate(staff_count=Count("staff", distinct=True)).order_by("code")
    return render(request, "loyalty/store_list.html", {"stores": stores})


@require("loyalty.manage_program")
def store_edit(request, pk=None):
    store = get_object_or_404(Store, pk=pk) if pk else Store()
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        save_with_audit(form=form, staff=request.user, action="store")
        messages.success(request, _("Store saved."))
        return redirect("loyalty:store-list")
    return render(
        request,
        "loyalty/form_page.html",
        {
            "form": form,
            "title": _("Edit store") if pk else _("New store"),
            "back": reverse("loyalty:store-list"),
        },
    )


@require("loyalty.manage_api_keys")
def apikey_list(request):
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        key, new_key = create_api_key(
            store=form.cleaned_data["store"], name=form.cleaned_data["name"], staff=request.user
        )
        form = ApiKeyForm()
    keys = ApiKey.objects.select_related("store", "created_by").order_by("store__code", "-id")
    return render(
        request,
        "loyalty/apikey_list.html",
        {
            "keys": keys,
            "form": form,
            "new_key": new_key,
        },
    )


@require("loyalty.manage_api_keys")
@require_POST
def apikey_revoke(request, pk):
    key = get_object_or_404(ApiKey, pk=pk)
    revoke_api_key(key_id=key.pk, staff=request.user)
    messages.success(request, _("Key %(prefix)s revoked.") % {"prefix": key.prefix})
    return redirect("loyalty:apikey-list")


@require("loyalty.manage_staff")
def staff_list(request):
    users = User.objects.prefetch_related("groups", "stores").order_by("username")
    return render(request, "loyalty/staff_list.html", {"users": users, "role_labels": ROLE_LABELS})


@require("loyalty.manage_staff")
def staff_edit(request, pk=None):
    user = get_object_or_404(User, pk=pk) if pk else User()
    form = StaffForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        save_staff_user(
            user=form.save(commit=False),
            role=form.cleaned_data["role"],
            stores=list(form.cleaned_data["stores"]),
            password=form.cleaned_data["password"],
            staff=request.user,
        )
        messages.success(request, _("Staff account saved."))
        return redirect("loyalty:staff-list")
    return render(
        request,
        "loyalty/form_page.html",
        {
            "form": form,
            "title": _("Edit staff account") if pk else _("New staff account"),
            "back": reverse("loyalty:staff-list"),
        },
    )


@require("loyalty.manage_program")
def program_edit(request):
    form = ProgramSettingsForm(request.POST or None, instance=ProgramSettings.load())
    if request.method == "POST" and form.is_valid():
        save_with_audit(form=form, staff=request.user, action="program")
        messages.success(request, _("Program rules saved."))
        return redirect("loyalty:program")
    context = {
        "form": form,
        "tiers": Tier.objects.order_by("threshold"),
        "plans": MembershipPlan.objects.select_related("tier").annotate(
            live=Count("memberships", filter=Q(memberships__status__in=["trial", "active"]))
        ),
        "product_rules": ProductRule.objects.order_by("kind", "category", "sku"),
    }
    return render(request, "loyalty/program.html", context)


def _program_part(request, *, model, form_class, pk, action, titles, saved):
    """A page of the Program section that creates or edits one row, audited."""
    instance = get_object_or_404(model, pk=pk) if pk else model()
    form = form_class(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        save_with_audit(form=form, staff=request.user, action=action)
        messages.success(request, saved)
        return redirect("loyalty:program")
    return render(
        request,
        "loyalty/form_page.html",
        {"form": form, "title": titles[bool(pk)], "back": reverse("loyalty:program")},
    )


@require("loyalty.manage_program")
def tier_edit(request, pk=None):
    return _program_part(
        request,
        model=Tier,
        form_class=TierForm,
        pk=pk,
        action="tier",
        titles=(_("New tier"), _("Edit tier")),
        saved=_("Tier saved."),
    )


@require("loyalty.manage_program")
def plan_edit(request, pk=None):
    return _program_part(
        request,
        model=MembershipPlan,
        form_class=MembershipPlanForm,
        pk=pk,
        action="membership_plan",
        titles=(_("New membership plan"), _("Edit membership plan")),
        saved=_("Membership plan saved."),
    )


@require("loyalty.manage_program")
def product_rule_edit(request, pk=None):
    return _program_part(
        request,
        model=ProductRule,
        form_class=ProductRuleForm,
        pk=pk,
        action="product_rule",
        titles=(_("New product rule"), _("Edit product rule")),
        saved=_("Product rule saved."),
    )


@require("loyalty.view_audit")
def audit_list(request):
    entries = AuditLogFilterSet(
        request.GET, queryset=AuditLog.objects.select_related("actor", "member").order_by("-id")
    )
    valid = entries.is_valid()
    rows = entries.qs if valid else entries.queryset.none()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    actions = AuditLog.objects.order_by("action").values_list("action", flat=True).distinct()
    chosen = entries.form.cleaned_data if valid else {}
    return render(
        request,
        "loyalty/audit_list.html",
        {
            "page": page,
            "filter": entries,
            "action": chosen.get("action", ""),
            "actor": chosen.get("actor", ""),
            "actions": list(actions),
        },
    )

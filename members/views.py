"""Member pages: search as you type, the member's whole story, enrolment and support actions."""

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.queries import member_campaigns
from loyalty.engine.adjustments import adjust_points, adjustment_limit
from loyalty.engine.db import prepared_statements
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.memberships import cancel_membership, join_membership
from loyalty.models import AuditLog, Membership, ProgramSettings
from loyalty.web.access import is_fragment, require
from loyalty.web.shortcuts import add_service_error, htmx_redirect, scoped_member
from members import queries
from members.filters import LedgerEntryFilterSet, MemberFilterSet
from members.forms import (
    CONSENT_TEXT,
    AdjustForm,
    EnrolForm,
    EraseForm,
    MemberForm,
    MembershipJoinForm,
    MergeForm,
    ReasonForm,
)
from members.models import Member
from members.personal_data import erase_personal_data, export_personal_data
from members.services import (
    enrol_member,
    merge_members,
    normalise_phone,
    set_member_blocked,
    update_member,
)


@require("loyalty.view_members")
def member_list(request):
    """Search as you type, or the latest enrolments; narrowed by status. A value the filter
    refuses shows its error over an empty list."""
    members = MemberFilterSet(request.GET, queryset=queries.member_list(request.user))
    valid = members.is_valid()
    results = list(members.qs[:20]) if valid else []
    text = members.form.cleaned_data.get("q", "") if valid else request.GET.get("q", "")
    context = {"filter": members, "q": text, "results": results}
    template = "members/member_list.html"
    if is_fragment(request):
        template += "#results"
    return render(request, template, context)


@require("loyalty.view_members")
@prepared_statements()  # every query of the page finds the member's rows by its id
def member_detail(request, card_number):
    member = scoped_member(request, card_number, with_merged=True)
    now = timezone.now()
    program = ProgramSettings.cached()
    ledger = LedgerEntryFilterSet(
        request.GET or None, queryset=queries.member_ledger(member, request.user)
    )
    kind = ledger.form.cleaned_data.get("kind", "") if ledger.is_valid() else ""
    ledger_page = queries.HistoryPage(ledger.qs, request.GET.get("ledger_page"), 20)
    context = {
        "member": member,
        "overview": queries.member_overview(member, now, program),
        "ledger_filter": ledger.form,
        "ledger_page": ledger_page,
        "kind": kind,
    }
    if is_fragment(request) and request.GET.get("part") == "ledger":
        return render(request, "members/member_detail.html#ledger", context)
    purchases_page = queries.HistoryPage(
        queries.member_purchases(member, request.user), request.GET.get("purchases_page"), 10
    )
    context.update(
        {
            "purchases_page": purchases_page,
            "audit_entries": AuditLog.objects.filter(member=member)
            .select_related("actor")
            .order_by("-id")[:20],
            "merged_members": list(member.merged_members.only("card_number", "first_name"))
            if member.has_merged
            else [],
            "complaints": list(
                member.complaints.select_related("assignee")
                .only(
                    "subject",
                    "status",
                    "created_at",
                    "compensation_points",
                    "member_id",
                    "assignee__username",
                )
                .order_by("-created_at")[:10]
            ),
            "survey_answers": list(
                member.survey_responses.select_related("survey")
                .only("score", "reason", "comment", "answered_at", "member_id", "survey__kind")
                .order_by("-answered_at")[:10]
            ),
            "consent_events": list(
                member.consent_events.select_related("staff").order_by("-created_at", "-id")[:20]
            ),
            "campaigns": member_campaigns(member),
            "adjust_form": AdjustForm(),
            "adjust_limit": adjustment_limit(request.user),
            "block_form": ReasonForm(),
            "merge_form": MergeForm(),
            **_membership_context(member),
            "erase_form": EraseForm(card_number=member.card_number),
            "now": now,
        }
    )
    return render(request, "members/member_detail.html", context)


@require("loyalty.view_members")
def member_purchase(request, card_number, pk):
    """A receipt's lines and refunds: fetched when its row on the member page is opened (the
    page stays the same size whatever the receipts hold), or as a page of its own."""
    member = scoped_member(request, card_number)
    purchase = get_object_or_404(queries.member_purchases(member, request.user), pk=pk)
    (purchase,) = queries.with_details([purchase])
    context = {"member": member, "purchase": purchase}
    if is_fragment(request):
        return render(request, "members/purchase_detail.html#details", context)
    return render(request, "members/purchase_detail.html", context)


@require("loyalty.enrol_member")
def member_enrol(request):
    stores = queries.stores_for(request.user).filter(is_active=True)
    form = EnrolForm(request.POST or None, stores=stores, initial={"language": "ru"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            member = enrol_member(
                phone=data["phone"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                birth_date=data["birth_date"],
                language=data["language"],
                marketing_consent=data["marketing_consent"],
                consent_text=str(CONSENT_TEXT),
                store=data["store"],
                channel=Member.Channel.STORE,
                staff=request.user,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("Enrolled. Card number %(card)s.") % {"card": member.card_number},
            )
            return htmx_redirect(
                request, reverse("members:member-detail", args=[member.card_number])
            )
    template = "members/member_enrol.html"
    if is_fragment(request) and request.method == "POST":
        template += "#form"
    return render(request, template, {"form": form, "consent_text": CONSENT_TEXT})


@require("loyalty.enrol_member")
def phone_check(request):
    """While enrolling: is this phone valid, and is it already a member? (HTMX, as you type)"""
    raw = request.GET.get("phone", "")
    context = {"checked": False}
    if len(raw.strip()) >= 6:
        try:
            phone = normalise_phone(raw)
        except LoyaltyError:
            context = {"checked": True, "valid": False}
        else:
            existing = Member.objects.filter(phone=phone).only("card_number").first()
            visible = (
                existing is not None
                and queries.members_for(request.user).filter(pk=existing.pk).exists()
            )
            context = {
                "checked": True,
                "valid": True,
                "phone": phone,
                "existing": existing,
                "visible": visible,
            }
    return render(request, "members/member_enrol.html#phone-check", context)


@require("loyalty.edit_member")
def member_edit(request, card_number):
    member = scoped_member(request, card_number)
    initial = {
        "phone": str(member.phone),
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "birth_date": member.birth_date,
        "language": member.language,
        "marketing_consent": member.marketing_consent,
    }
    form = MemberForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            update_member(
                member_id=member.pk,
                staff=request.user,
                consent_text=str(CONSENT_TEXT),
                **form.cleaned_data,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Saved."))
            return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    context = {"member": member, "form": form, "consent_text": CONSENT_TEXT}
    return render(request, "members/member_edit.html", context)


@require("loyalty.adjust_points")
@require_POST
def member_adjust(request, card_number):
    member = scoped_member(request, card_number)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            adjust_points(
                member_id=member.pk,
                points=form.cleaned_data["points"],
                reason=form.cleaned_data["reason"],
                staff=request.user,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Points adjusted."))
            return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    context = {
        "member": member,
        "adjust_form": form,
        "adjust_limit": adjustment_limit(request.user),
    }
    return render(request, "members/member_detail.html#adjust", context, status=422)


def _membership_context(member, form=None):
    live = (
        Membership.objects.filter(member=member, status__in=["trial", "active"])
        .select_related("plan")
        .first()
    )
    return {"membership": live, "membership_form": form or (None if live else MembershipJoinForm())}


@require("loyalty.edit_member")
@require_POST
def member_membership_join(request, card_number):
    member = scoped_member(request, card_number)
    form = MembershipJoinForm(request.POST)
    if form.is_valid():
        try:
            join_membership(
                member_id=member.pk,
                plan_id=form.cleaned_data["plan"].pk,
                trial=form.cleaned_data["trial"],
                staff=request.user,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Membership started."))
            return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    context = {"member": member, **_membership_context(member, form)}
    return render(request, "members/member_detail.html#membership", context, status=422)


@require("loyalty.edit_member")
@require_POST
def member_membership_cancel(request, card_number):
    member = scoped_member(request, card_number)
    posted = request.POST.get("membership", "")
    live = Membership.objects.filter(
        member=member,
        pk=int(posted) if posted.isdigit() and len(posted) < 16 else None,
        status__in=["trial", "active"],
        auto_renew=True,
    ).first()
    if live is None:  # a stale page: show the membership as it is now
        context = {"member": member, **_membership_context(member)}
        context["membership_error"] = _("This membership no longer renews; the page is updated.")
        return render(request, "members/member_detail.html#membership", context, status=422)
    cancel_membership(membership_id=live.pk, staff=request.user)
    messages.success(request, _("Renewal cancelled: the membership runs to the end of its period."))
    return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))


@require("loyalty.edit_member")
@require_POST
def member_block(request, card_number):
    member = scoped_member(request, card_number)
    form = ReasonForm(request.POST)
    blocking = member.status == Member.Status.ACTIVE
    if form.is_valid():
        try:
            set_member_blocked(
                member_id=member.pk,
                blocked=blocking,
                reason=form.cleaned_data["reason"],
                staff=request.user,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Card blocked.") if blocking else _("Card unblocked."))
            return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    return render(
        request,
        "members/member_detail.html#block",
        {"member": member, "block_form": form},
        status=422,
    )


@require("loyalty.edit_member")
@require_POST
def member_merge(request, card_number):
    target = scoped_member(request, card_number)
    form = MergeForm(request.POST)
    if form.is_valid():
        source = (
            queries.members_for(request.user)
            .filter(card_number=form.cleaned_data["duplicate_card"])
            .first()
        )
        if source is None:
            form.add_error("duplicate_card", _("No member you can see has this card number."))
        else:
            try:
                merge_members(
                    source_id=source.pk,
                    target_id=target.pk,
                    reason=form.cleaned_data["reason"],
                    staff=request.user,
                )
            except LoyaltyError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request,
                    _("Member %(card)s merged into this one.") % {"card": source.card_number},
                )
                return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    return render(
        request,
        "members/member_detail.html#merge",
        {"member": target, "merge_form": form},
        status=422,
    )


@require("loyalty.handle_personal_data")
def member_personal_data(request, card_number):
    """The member's personal data as one JSON file, downloaded at their request (audited)."""
    member = scoped_member(request, card_number)
    data = export_personal_data(member_id=member.pk, staff=request.user)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="personal-data-{card_number}.json"'
    return response


@require("loyalty.handle_personal_data")
@require_POST
def member_erase(request, card_number):
    """Erase the member's personal data at their request, once the card number is typed."""
    member = scoped_member(request, card_number)
    form = EraseForm(request.POST, card_number=member.card_number)
    if form.is_valid():
        try:
            erase_personal_data(
                member_id=member.pk, reason=form.cleaned_data["reason"], staff=request.user
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Personal data erased; the card is blocked."))
            return htmx_redirect(request, reverse("members:member-detail", args=[card_number]))
    return render(
        request,
        "members/member_detail.html#erase",
        {"member": member, "erase_form": form},
        status=422,
    )

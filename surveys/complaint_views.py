"""The support queue: cases by due time, taken, worked and resolved without leaving it."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from loyalty.access import is_fragment, require
from loyalty.engine.adjustments import adjustment_limit
from loyalty.engine.errors import LoyaltyError
from members.queries import members_for, stores_for
from members.views import add_service_error, htmx_redirect
from surveys import queries
from surveys.models import Complaint, ComplaintCategory
from surveys.services import (
    add_complaint_note,
    change_complaint_status,
    open_complaint,
    resolve_complaint,
    take_complaint,
)


class ComplaintForm(forms.Form):
    card_number = forms.CharField(
        label=gettext_lazy("Member's card number"), max_length=13, required=False
    )
    category = forms.ModelChoiceField(
        label=gettext_lazy("Category"), queryset=ComplaintCategory.objects.all()
    )
    source = forms.ChoiceField(
        label=gettext_lazy("How it came in"),
        choices=[
            (Complaint.Source.PHONE, Complaint.Source.PHONE.label),
            (Complaint.Source.VISIT, Complaint.Source.VISIT.label),
            (Complaint.Source.EMAIL, Complaint.Source.EMAIL.label),
        ],
    )
    store = forms.ModelChoiceField(label=gettext_lazy("Store"), queryset=None, required=False)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("What happened"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores


class NoteForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Internal note"), widget=forms.Textarea(attrs={"rows": 2})
    )


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        label=gettext_lazy("How it was resolved"), widget=forms.Textarea(attrs={"rows": 3})
    )
    points = forms.IntegerField(
        label=gettext_lazy("Compensation in points"), min_value=0, required=False, initial=0
    )
    coupon_amount = forms.DecimalField(
        label=gettext_lazy("Compensation coupon, amount"),
        min_value=Decimal("0.01"),
        max_digits=10,
        decimal_places=2,
        required=False,
    )


def scoped_complaint(request, pk):
    return get_object_or_404(queries.complaint_queue(request.user, status=""), pk=pk)


@require("loyalty.handle_complaints")
def complaint_list(request):
    status = request.GET.get("status", "open")
    filters = {
        "status": status,
        "store": request.GET.get("store", ""),
        "category": request.GET.get("category", ""),
        "assignee": request.GET.get("assignee", ""),
    }
    cases = queries.complaint_queue(request.user, **filters)
    page = Paginator(cases, 50).get_page(request.GET.get("page"))
    now = timezone.now()
    for case in page:
        case.overdue = queries.is_overdue(case, now)
    return render(
        request,
        "surveys/complaint_list.html",
        {
            "page": page,
            "filters": filters,
            "statuses": [("open", _("Open"))] + list(Complaint.Status.choices) + [("", _("All"))],
            "categories": ComplaintCategory.objects.all(),
            "stores": stores_for(request.user),
            "resolve_form": ResolveForm(),
            "adjust_limit": adjustment_limit(request.user),
        },
    )


@require("loyalty.handle_complaints")
def complaint_create(request):
    stores = stores_for(request.user)
    form = ComplaintForm(
        request.POST or None, stores=stores, initial={"card_number": request.GET.get("card", "")}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        member = None
        if data["card_number"]:
            member = members_for(request.user).filter(card_number=data["card_number"]).first()
            if member is None:
                form.add_error("card_number", _("No member you can see has this card number."))
        if not form.errors:
            try:
                complaint = open_complaint(
                    member=member,
                    category=data["category"],
                    subject=data["subject"],
                    description=data["description"],
                    source=data["source"],
                    store=data["store"],
                    staff=request.user,
                )
            except LoyaltyError as error:
                add_service_error(form, error)
            else:
                messages.success(request, _("Case #%(id)s opened.") % {"id": complaint.pk})
                return redirect("complaints:complaint-detail", pk=complaint.pk)
    return render(request, "surveys/complaint_form.html", {"form": form})


@require("loyalty.handle_complaints")
def complaint_detail(request, pk):
    complaint = scoped_complaint(request, pk)
    return render(
        request,
        "surveys/complaint_detail.html",
        {
            "complaint": complaint,
            "notes": complaint.notes.select_related("author"),
            "note_form": NoteForm(),
            "resolve_form": ResolveForm(),
            "overdue": queries.is_overdue(complaint),
            "next_statuses": _next_statuses(complaint),
            "adjust_limit": adjustment_limit(request.user),
        },
    )


def _next_statuses(complaint):
    from surveys.services import ALLOWED

    return [
        (status, Complaint.Status(status).label)
        for status in sorted(ALLOWED[complaint.status])
        if status != Complaint.Status.CLOSED
    ] + (
        [(Complaint.Status.CLOSED, Complaint.Status.CLOSED.label)]
        if Complaint.Status.CLOSED in ALLOWED[complaint.status]
        else []
    )


def _back(request, complaint):
    if request.POST.get("back") == "queue":
        return reverse("complaints:complaint-list")
    return reverse("complaints:complaint-detail", args=[complaint.pk])


@require("loyalty.handle_complaints")
@require_POST
def complaint_take(request, pk):
    complaint = scoped_complaint(request, pk)
    try:
        take_complaint(complaint_id=complaint.pk, staff=request.user)
    except LoyaltyError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("Case #%(id)s is yours.") % {"id": complaint.pk})
    return htmx_redirect(request, _back(request, complaint))


@require("loyalty.handle_complaints")
@require_POST
def complaint_status(request, pk):
    complaint = scoped_complaint(request, pk)
    try:
        change_complaint_status(
            complaint_id=complaint.pk, status=request.POST.get("status", ""), staff=request.user
        )
    except (LoyaltyError, ValueError) as error:
        messages.error(request, str(getattr(error, "message", error)))
    return htmx_redirect(request, _back(request, complaint))


@require("loyalty.handle_complaints")
@require_POST
def complaint_note(request, pk):
    complaint = scoped_complaint(request, pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        add_complaint_note(
            complaint_id=complaint.pk, staff=request.user, text=form.cleaned_data["text"]
        )
    return htmx_redirect(request, _back(request, complaint))


@require("loyalty.handle_complaints")
@require_POST
def complaint_resolve(request, pk):
    complaint = scoped_complaint(request, pk)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            resolve_complaint(
                complaint_id=complaint.pk,
                staff=request.user,
                resolution=form.cleaned_data["resolution"],
                points=form.cleaned_data["points"] or 0,
                coupon_amount=form.cleaned_data["coupon_amount"],
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Case #%(id)s resolved.") % {"id": complaint.pk})
            return htmx_redirect(request, _back(request, complaint))
    template = (
        "surveys/complaint_detail.html#resolve"
        if is_fragment(request)
        else ("surveys/complaint_detail.html")
    )
    return render(
        request,
        template,
        {
            "complaint": complaint,
            "resolve_form": form,
            "notes": complaint.notes.all(),
            "note_form": NoteForm(),
            "next_statuses": _next_statuses(complaint),
            "adjust_limit": adjustment_limit(request.user),
            "queue": request.POST.get("back") == "queue",
        },
        status=422,
    )

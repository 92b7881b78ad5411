"""The member's own page (``/me/``): sign-in by a one-time link, then the account in the member's
language. Rules live in members/self_service.py; these views only call them."""

import functools
import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.ledger import balance_of
from loyalty.engine.tiers import tier_outlook
from loyalty.models import ProgramSettings
from loyalty.web.access import require
from loyalty.web.shortcuts import add_service_error, scoped_member
from loyalty.web.taskqueue import delay_on_commit
from members import self_service
from members.models import ConsentEvent
from members.personal_data import erase_personal_data, export_personal_data
from members.queries import HistoryPage
from members.self_forms import DetailsForm, EraseForm, SignInForm
from members.services import update_member
from messaging.tasks import deliver_messages

HISTORY_PAGE = 20


def _address(request):
    # The proxy in front (SPEC: gunicorn behind a TLS proxy) is the one REMOTE_ADDR names when
    # it does not pass the client's address on; the throttle then counts per proxy, still safe.
    return request.META.get("REMOTE_ADDR") or "unknown"


def _language(member):
    return member.language if member.language in ("ru", "en") else settings.LANGUAGE_CODE


def member_page(view):
    """Pages for a signed-in member: the session cookie's member, the member's language;
    anyone else goes to the sign-in page. Staff sign-in plays no part in it."""

    @functools.wraps(view)
    @never_cache
    def wrapper(request, *args, **kwargs):
        member = self_service.member_for_session(request.COOKIES.get(self_service.SESSION_COOKIE))
        if member is None:
            return redirect("me:sign-in")
        with translation.override(_language(member)):
            return view(request, member, *args, **kwargs)

    return wrapper


def _render(request, template, context=None, *, status=200):
    context = {"language": translation.get_language(), **(context or {})}
    return render(request, template, context, status=status)


@never_cache
def sign_in(request):
    """Type a phone or e-mail, get a link. The answer is the same whoever the contact is."""
    if self_service.member_for_session(request.COOKIES.get(self_service.SESSION_COOKIE)):
        return redirect("me:account")
    form = SignInForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            self_service.request_sign_in_link(
                contact=form.cleaned_data["contact"], address=_address(request)
            )
        except LoyaltyError as error:
            add_service_error(form, error)
            status = error.status_code
        else:
            delay_on_commit(deliver_messages)
            return redirect("me:link-sent")
    elif request.method == "POST":
        status = 400
    return _render(request, "members/me/sign_in.html", {"form": form}, status=status)


@never_cache
def link_sent(request):
    return _render(
        request,
        "members/me/link_sent.html",
        {"minutes": int(self_service.LINK_LIFETIME.total_seconds() // 60)},
    )


@never_cache
def sign_in_link(request, token):
    """The link from the message. Opening it (GET) uses nothing up: mail scanners open links
    too. The member presses the button (POST) and the link is used up for a session."""
    if request.method != "POST":
        response = _render(request, "members/me/sign_in_link.html", {"token": token})
        # The token never leaves the site in a Referer. Not "no-referrer": then the browser
        # sends the button's POST with "Origin: null", which the CSRF check rightly refuses.
        response["Referrer-Policy"] = "same-origin"
        return response
    try:
        member, key = self_service.sign_in_with_link(token=token, address=_address(request))
    except LoyaltyError as error:
        return _render(
            request, "members/me/link_problem.html", {"error": error}, status=error.status_code
        )
    response = redirect("me:account")
    response.set_cookie(
        self_service.SESSION_COOKIE,
        key,
        max_age=int(self_service.SESSION_LIFETIME.total_seconds()),
        path=self_service.SESSION_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_POST
def sign_out(request):
    self_service.end_sessions(raw=request.COOKIES.get(self_service.SESSION_COOKIE, ""))
    response = redirect("me:sign-in")
    response.delete_cookie(self_service.SESSION_COOKIE, path=self_service.SESSION_COOKIE_PATH)
    return response


@member_page
def account(request, member):
    now = timezone.now()
    program = ProgramSettings.cached()
    history = list(self_service.member_history(member)[:5])
    outlook = tier_outlook(program, member, now)
    progress = None
    if outlook["reach"] is not None:
        span = outlook["reach"]["tier"].threshold - member.tier.threshold
        done = max(0, outlook["value"] - member.tier.threshold)
        progress = int(min(100, done * 100 / span)) if span > 0 else 100
    return _render(
        request,
        "members/me/account.html",
        {
            "member": member,
            "balance": balance_of(member, now),
            "lots": self_service.member_lots(member, now),
            "outlook": outlook,
            "progress": progress,
            "counts_purchases": program.tier_qualification == ProgramSettings.Qualification.COUNT,
            "coupons": self_service.member_coupons(member, now),
            "referral": self_service.referral(member, program),
            "history": [(entry, self_service.entry_reason(entry)) for entry in history],
            "currency": program.currency,
            "now": now,
        },
    )


@member_page
def history(request, member):
    page = HistoryPage(self_service.member_history(member), request.GET.get("page"), HISTORY_PAGE)
    return _render(
        request,
        "members/me/history.html",
        {
            "member": member,
            "page": page,
            "rows": [(entry, self_service.entry_reason(entry)) for entry in page],
        },
    )


@member_page
def details(request, member):
    """The member's e-mail, phone, language and marketing consent (audited; consent history)."""
    initial = {
        "email": member.email,
        "phone": member.phone.as_national if member.phone else "",
        "language": _language(member),
        "marketing_consent": member.marketing_consent,
    }
    form = DetailsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                update_member(
                    member_id=member.pk,
                    staff=None,
                    reason=_("Changed by the member on their own page"),
                    consent_text=str(form.fields["marketing_consent"].label),
                    source=ConsentEvent.Source.MEMBER_PAGE,
                    email=data["email"],
                    phone=data["phone"],
                    language=data["language"],
                    marketing_consent=data["marketing_consent"],
                )
            except LoyaltyError as error:
                add_service_error(form, error)
            else:
                with translation.override(data["language"]):
                    messages.success(request, _("Your details are saved."))
                return redirect("me:account")
    return _render(
        request, "members/me/details.html", {"member": member, "form": form}, status=status
    )


@member_page
def personal_data(request, member):
    """All the member's data as one JSON file (the same file support downloads; audited)."""
    data = export_personal_data(member_id=member.pk, by_member=True)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="personal-data-{member.card_number}.json"'
    )
    return response


@member_page
def erase(request, member):
    """Erasure at the member's request, once they type their card number: done at once by the
    same service support uses; the member is signed out and the card blocked."""
    form = EraseForm(request.POST or None, card_number=member.card_number)
    if request.method == "POST" and form.is_valid():
        erase_personal_data(
            member_id=member.pk, reason=_("Requested by the member on their own page")
        )
        self_service.end_sessions(member_id=member.pk)
        response = _render(request, "members/me/erased.html")
        response.delete_cookie(self_service.SESSION_COOKIE, path=self_service.SESSION_COOKIE_PATH)
        return response
    status = 422 if request.method == "POST" else 200
    return _render(
        request, "members/me/erase.html", {"member": member, "form": form}, status=status
    )


@require("loyalty.edit_member")
@require_POST
def send_link(request, card_number):
    """Staff send the member a link to their own page, from the member page."""
    member = scoped_member(request, card_number)
    try:
        channel = self_service.send_sign_in_link(member_id=member.pk, staff=request.user)
    except LoyaltyError as error:
        messages.error(request, str(error.message))
    else:
        delay_on_commit(deliver_messages)
        if channel == "sms":
            messages.success(request, _("A link to their own page is on its way by SMS."))
        else:
            messages.success(request, _("A link to their own page is on its way by e-mail."))
    return redirect(reverse("members:member-detail", args=[card_number]))

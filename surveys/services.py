"""Survey links and answers, and the life of a complaint case (SPEC section 7).

A survey link carries 256 random bits; only their SHA-256 is stored, the link works once and
expires. A detractor's NPS answer opens a complaint for support at once. Complaints move
new → in progress → waiting on customer → resolved → closed; compensation goes through the
ledger within the role's limit, and every step is audited.
"""

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from loyalty.engine import outbox, webhook_events
from loyalty.engine.adjustments import apply_adjustment
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import retry_on_conflict
from loyalty.models import Coupon, audit
from members import segments
from members.models import Member
from surveys.messages import survey_message, survey_url
from surveys.models import (
    ChurnReason,
    Complaint,
    ComplaintCategory,
    ComplaintNote,
    NpsGroup,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    nps_group,
)

MAX_COMMENT = 2000


def hash_token(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def create_invitation(*, survey, member, now, purchase=None, complaint=None):
    """A new single-use link for ``member``. Returns (invitation, raw token); the raw token is
    never stored, so it must go into the message that carries the link."""
    raw = secrets.token_urlsafe(32)
    invitation = SurveyInvitation.objects.create(
        survey=survey,
        member=member,
        token_hash=hash_token(raw),
        purchase=purchase,
        complaint=complaint,
        store_id=purchase.store_id if purchase else member.enrolled_store_id,
        channel=purchase.channel if purchase else "",
        language=member.language,
        created_at=now,
        expires_at=now + timedelta(days=survey.link_valid_days),
    )
    return invitation, raw


def renew_token(invitation):
    """A reminder carries a fresh token (the old one cannot be rebuilt from its hash)."""
    raw = secrets.token_urlsafe(32)
    SurveyInvitation.objects.filter(pk=invitation.pk).update(token_hash=hash_token(raw))
    return raw


def link_problem(invitation, now):
    """Why a link cannot be answered (a LoyaltyError), or None when it can."""
    if invitation is None:
        return LoyaltyError(
            "survey_link_invalid", _("This survey link is not valid."), status_code=404
        )
    if invitation.answered_at is not None:
        return LoyaltyError(
            "survey_link_used",
            _("This survey has already been answered. Thank you!"),
            status_code=409,
        )
    if invitation.expires_at <= now:
        return LoyaltyError(
            "survey_link_expired", _("This survey link has expired."), status_code=410
        )
    return None


def find_invitation(raw):
    if not raw or len(raw) > 100:
        return None
    return (
        SurveyInvitation.objects.select_related("survey", "member")
        .filter(token_hash=hash_token(raw))
        .first()
    )


def _clean_answer(survey, score, reason, comment):
    fields = {}
    if survey.kind in (Survey.Kind.NPS, Survey.Kind.CSAT):
        if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 10:
            fields["score"] = [str(_("Choose a score from 0 to 10."))]
    elif reason not in ChurnReason.values:
        fields["reason"] = [str(_("Choose a reason."))]
    if comment and len(comment) > MAX_COMMENT:
        fields["comment"] = [str(_("At most 2,000 characters."))]
    if fields:
        raise LoyaltyError(
            "invalid", _("The answer is incomplete."), fields=fields, status_code=400
        )


@retry_on_conflict
@transaction.atomic(durable=True)
def answer_survey(*, token, score=None, reason="", comment="", source="link", now=None):
    """Record a member's answer once. A detractor's NPS answer opens a complaint case.

    Raises ``survey_link_invalid`` (404), ``survey_link_used`` (409), ``survey_link_expired``
    (410) and ``invalid`` (400) for an incomplete answer.
    """
    now = now or timezone.now()
    comment = (comment or "").strip()
    invitation = (
        SurveyInvitation.objects.select_for_update(of=("self",))
        .select_related("survey", "member__tier")
        .filter(token_hash=hash_token(token or ""))
        .first()
        if token and len(token) <= 100
        else None
    )
    problem = link_problem(invitation, now)
    if problem:
        raise problem
    survey = invitation.survey
    _clean_answer(survey, score, reason, comment)
    member = invitation.member
    response = SurveyResponse.objects.create(
        survey=survey,
        invitation=invitation,
        member=member,
        score=score if survey.kind != Survey.Kind.CHURN else None,
        group=nps_group(score) if survey.kind == Survey.Kind.NPS else "",
        reason=reason if survey.kind == Survey.Kind.CHURN else "",
        comment=comment,
        store_id=invitation.store_id,
        tier=member.tier,
        channel=invitation.channel,
        source=source,
        answered_at=now,
    )
    SurveyInvitation.objects.filter(pk=invitation.pk).update(answered_at=now)
    if response.group == NpsGroup.DETRACTOR:
        _open(
            member=member,
            category=ComplaintCategory.objects.get(code="detractor"),
            subject=_("NPS %(score)s: %(comment)s")
            % {"score": score, "comment": comment[:80] or _("no comment")},
            description=comment,
            source=Complaint.Source.SURVEY,
            store_id=invitation.store_id,
            staff=None,
            now=now,
            survey_response=response,
        )
    return response


def _open(
    *, member, category, subject, description, source, store_id, staff, now, survey_response=None
):
    complaint = Complaint.objects.create(
        member=member,
        category=category,
        store_id=store_id,
        source=source,
        subject=str(subject)[:200],
        description=description,
        due_at=now + timedelta(hours=category.sla_hours),
        survey_response=survey_response,
        created_by=staff,
        created_at=now,
    )
    audit(
        actor=staff,
        action="complaint.open",
        member=member,
        obj=complaint,
        after={"category": category.code, "source": source, "due_at": complaint.due_at.isoformat()},
    )
    webhook_events.complaint_opened(complaint, member=member, now=now)
    return complaint


@transaction.atomic(durable=True)
def open_complaint(
    *, member, category, subject, description="", source, store=None, staff=None, now=None
):
    """A case opened by staff (a phone call, a visit) or through the API; due by the
    category's SLA."""
    subject = (subject or "").strip()
    if not subject:
        raise LoyaltyError(
            "invalid",
            _("Give the complaint a subject."),
            fields={"subject": [str(_("This field is required."))]},
            status_code=400,
        )
    return _open(
        member=member,
        category=category,
        subject=subject,
        description=description or "",
        source=source,
        store_id=store.pk if store else None,
        staff=staff,
        now=now or timezone.now(),
    )


ALLOWED = {
    Complaint.Status.NEW: {Complaint.Status.IN_PROGRESS, Complaint.Status.WAITING},
    Complaint.Status.IN_PROGRESS: {Complaint.Status.WAITING},
    Complaint.Status.WAITING: {Complaint.Status.IN_PROGRESS},
    Complaint.Status.RESOLVED: {Complaint.Status.CLOSED, Complaint.Status.IN_PROGRESS},
    Complaint.Status.CLOSED: set(),
}


def _lock_complaint(complaint_id):
    return (
        Complaint.objects.select_for_update(of=("self",))
        .select_related("member", "category")
        .get(pk=complaint_id)
    )


@transaction.atomic(durable=True)
def take_complaint(*, complaint_id, staff, now=None):
    """The agent takes the case: it is theirs and in progress."""
    complaint = _lock_complaint(complaint_id)
    if not complaint.is_open:
        raise LoyaltyError("complaint_closed", _("This case is no longer open."))
    before = {"assignee": str(complaint.assignee_id or ""), "status": complaint.status}
    complaint.assignee = staff
    if complaint.status == Complaint.Status.NEW:
        complaint.status = Complaint.Status.IN_PROGRESS
    complaint.save(update_fields=["assignee", "status"])
    audit(
        actor=staff,
        action="complaint.take",
        member=complaint.member,
        obj=complaint,
        before=before,
        after={"assignee": staff.get_username(), "status": complaint.status},
    )
    return complaint


@transaction.atomic(durable=True)
def change_complaint_status(*, complaint_id, status, staff, now=None):
    """Move a case along its allowed transitions (resolving has its own service)."""
    now = now or timezone.now()
    complaint = _lock_complaint(complaint_id)
    if status not in ALLOWED[complaint.status]:
        raise LoyaltyError(
            "invalid_transition",
            _("A case that is %(current)s cannot become %(new)s.")
            % {"current": complaint.get_status_display(), "new": Complaint.Status(status).label},
        )
    before = {"status": complaint.status}
    complaint.status = status
    fields = ["status"]
    if status == Complaint.Status.CLOSED:
        complaint.closed_at = now
        fields.append("closed_at")
    complaint.save(update_fields=fields)
    audit(
        actor=staff,
        action="complaint.status",
        member=complaint.member,
        obj=complaint,
        before=before,
        after={"status": status},
    )
    return complaint


@transaction.atomic(durable=True)
def add_complaint_note(*, complaint_id, staff, text):
    text = (text or "").strip()
    if not text:
        raise LoyaltyError(
            "invalid",
            _("Write the note first."),
            fields={"text": [str(_("This field is required."))]},
            status_code=400,
        )
    complaint = _lock_complaint(complaint_id)
    return ComplaintNote.objects.create(complaint=complaint, author=staff, text=text)


def _record_text(text, **values):
    """A text the system writes into a record staff read later (a ledger entry's reason): in the
    merchant's language, whatever language the request that causes it speaks."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(text) % values


@retry_on_conflict
@transaction.atomic(durable=True)
def resolve_complaint(*, complaint_id, staff, resolution, points=0, coupon_amount=None, now=None):
    """Resolve a case with what was done; compensate with points (through the ledger, within
    the role's adjustment limit) and/or a personal coupon worth ``coupon_amount``, valid 30
    days. The member is then asked how satisfied they are (CSAT)."""
    now = now or timezone.now()
    resolution = (resolution or "").strip()
    if not resolution:
        raise LoyaltyError(
            "invalid",
            _("Say how the case was resolved."),
            fields={"resolution": [str(_("This field is required."))]},
            status_code=400,
        )
    complaint = _lock_complaint(complaint_id)
    if not complaint.is_open:
        raise LoyaltyError("complaint_closed", _("This case is no longer open."))
    if (points or coupon_amount) and complaint.member is None:
        raise LoyaltyError("invalid", _("Only a member can be compensated."), status_code=400)
    if points:
        apply_adjustment(
            member_id=complaint.member_id,
            points=points,
            reason=_record_text(_("Compensation for case #%(id)s"), id=complaint.pk),
            staff=staff,
            now=now,
            action="complaint.compensate",
        )
    coupon = None
    if coupon_amount:
        coupon = Coupon.objects.create(
            code=f"SORRY-{secrets.token_hex(4).upper()}",
            kind=Coupon.Kind.FIXED,
            value=Decimal(coupon_amount),
            member=complaint.member,
            valid_from=now,
            valid_until=now + timedelta(days=30),
            max_uses=1,
        )
        webhook_events.coupon_issued(coupon, card_number=complaint.member.card_number, now=now)
    before = {"status": complaint.status}
    complaint.status = Complaint.Status.RESOLVED
    complaint.resolution = resolution
    complaint.resolved_at = now
    complaint.compensation_points = max(0, points or 0)
    complaint.compensation_coupon = coupon
    if complaint.assignee_id is None:
        complaint.assignee = staff
    complaint.save()
    audit(
        actor=staff,
        action="complaint.resolve",
        member=complaint.member,
        obj=complaint,
        reason=resolution,
        before=before,
        after={
            "status": "resolved",
            "points": points or 0,
            "coupon": coupon.code if coupon else "",
        },
    )
    if complaint.member is not None:
        csat = Survey.objects.filter(code="csat", is_active=True).first()
        if csat is not None:
            _invitation, raw = create_invitation(
                survey=csat, member=complaint.member, now=now, complaint=complaint
            )
            _send_survey_link(complaint.member, raw, now, key=f"csat:{complaint.pk}")
    return complaint


def _send_survey_link(member, raw_token, now, key):
    """Queue the satisfaction survey's message, inside the caller's transaction (outbox)."""
    from messaging.models import Purpose

    outbox.enqueue(
        member_id=member.pk,
        purpose=Purpose.CSAT_SURVEY,
        key=key,
        context=survey_message(member.language, survey_url(raw_token), kind="csat"),
        now=now,
    )


def member_for_card(card_number):
    return Member.objects.filter(card_number=card_number).first()


def segment_members(*, now, store=None, tier=None, lapsed_days=None):
    """Members a survey may be sent to: active, with marketing consent, optionally enrolled in
    a store, in a tier (by code), or lapsed (bought before, but not in the last ``lapsed_days``).
    The send's criteria as a segment definition, read from the live receipts: members/segments.py
    is the one home of what each criterion means. An unknown store or tier code matches no one."""
    from loyalty.models import Store, Tier

    definition = {"consent": "yes", "lapsed_days": lapsed_days}
    for criterion, model, code in (("enrolled_stores", Store, store), ("tiers", Tier, tier)):
        if code:
            definition[criterion] = list(
                model.objects.filter(code=code).values_list("pk", flat=True)
            )
            if not definition[criterion]:
                return Member.objects.none()
    return segments.segment_members(definition, now=now, snapshot=None)


@transaction.atomic(durable=True)
def start_survey_send(*, survey, filters, staff):
    """Record an ad-hoc send; the Celery task does the work after commit."""
    from surveys.models import SurveySend

    send = SurveySend.objects.create(survey=survey, filters=filters, created_by=staff)
    audit(
        actor=staff,
        action="survey.send",
        obj=send,
        after={"survey": survey.code, **{k: v for k, v in filters.items() if v}},
    )
    return send


def run_survey_send(send, *, now=None, batch_size=500):
    """Invite every member of the segment once (safe to run twice: a member already invited by
    this send is skipped, and each batch commits its invitations with their messages)."""
    from django.db.models import Exists, OuterRef

    from surveys.models import SurveySend

    now = now or timezone.now()
    filters = send.filters
    members = segment_members(
        now=now,
        store=filters.get("store"),
        tier=filters.get("tier"),
        lapsed_days=filters.get("lapsed_days"),
    )
    already = SurveyInvitation.objects.filter(send=send, member=OuterRef("pk"))
    todo = list(members.filter(~Exists(already)).order_by("pk").values_list("pk", flat=True))
    done_before = SurveyInvitation.objects.filter(send=send).count()
    SurveySend.objects.filter(pk=send.pk).update(
        status=SurveySend.Status.RUNNING, total=done_before + len(todo), done=done_before
    )
    for start in range(0, len(todo), batch_size):
        batch = Member.objects.filter(pk__in=todo[start : start + batch_size])
        with transaction.atomic():
            for member in batch:
                invitation, raw = create_invitation(survey=send.survey, member=member, now=now)
                SurveyInvitation.objects.filter(pk=invitation.pk).update(send=send)
                outbox.enqueue(
                    member_id=member.pk,
                    purpose="survey",
                    key=f"survey:{invitation.pk}",
                    context=survey_message(member.language, survey_url(raw), kind=send.survey.kind),
                    now=now,
                )
        SurveySend.objects.filter(pk=send.pk).update(
            done=done_before + min(len(todo), start + batch_size)
        )
    SurveySend.objects.filter(pk=send.pk).update(status=SurveySend.Status.DONE, finished_at=now)
    send.refresh_from_db()
    return send

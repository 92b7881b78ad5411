"""A member's personal data on request (152-FZ, GDPR): all of it in one file, and erasure."""

from django.db import transaction
from django.db.models import F, Prefetch
from django.utils import timezone

from loyalty.engine.locking import lock_member, lock_members
from loyalty.engine.money import money_str
from loyalty.models import LedgerEntry, Purchase, PurchaseLine, Refund, audit
from members.models import ConsentEvent, Member
from members.services import consent_event, required_reason
from messaging.models import Message, Outbox
from surveys.models import Complaint, ComplaintNote, SurveyInvitation, SurveyResponse

FORMAT = "loyalty-personal-data/1"


def _time(value):
    return timezone.localtime(value).isoformat() if value is not None else None


def _profile(member):
    return {
        "card_number": member.card_number,
        "phone": member.phone.as_e164 if member.phone else None,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "language": member.language,
        "status": member.status,
        "tier": member.tier.code,
        "points_balance": member.points_balance,
        "points_debt": member.points_debt,
        "enrolled_at": _time(member.enrolled_at),
        "enrolled_store": member.enrolled_store.code if member.enrolled_store else None,
        "enrolment_channel": member.enrolment_channel,
        "external_ref": member.external_ref,
        "referral_code": member.referral_code,
        "marketing_consent": member.marketing_consent,
        "consent_at": _time(member.consent_at),
        "consent_source": member.consent_source,
        "consent_text": member.consent_text,
        "erased_at": _time(member.erased_at),
    }


def _purchase(purchase):
    return {
        "external_id": purchase.external_id,
        "store": purchase.store.code,
        "occurred_at": _time(purchase.occurred_at),
        "channel": purchase.channel,
        "amount": money_str(purchase.amount),
        "discount_amount": money_str(purchase.discount_amount),
        "redeemed_points": purchase.redeemed_points,
        "paid_amount": money_str(purchase.paid_amount),
        "earned_points": purchase.earned_points,
        "coupon_code": purchase.coupon_code,
        "refunded_amount": money_str(purchase.refunded_amount),
        "lines": [
            {
                "sku": line.sku,
                "category": line.category,
                "quantity": str(line.quantity),
                "unit_price": money_str(line.unit_price),
                "amount": money_str(line.amount),
            }
            for line in purchase.lines.all()
        ],
        "refunds": [
            {
                "refund_id": refund.refund_id,
                "amount": money_str(refund.amount),
                "reversed_points": refund.reversed_points,
                "returned_points": refund.returned_points,
                "created_at": _time(refund.created_at),
            }
            for refund in purchase.refunds.all()
        ],
    }


def member_data(member):
    """Everything the program holds about a member, as one JSON-ready dict: profile, consent
    history (with the text shown), purchases with lines and refunds, ledger, messages, survey
    answers and complaints with their notes. A fixed number of queries, whatever the history."""
    consents = member.consent_events.select_related("staff").order_by("created_at", "id")
    purchases = (
        Purchase.objects.filter(member=member)
        .select_related("store")
        .defer("response", "fingerprint")
        .prefetch_related(
            Prefetch("lines", queryset=PurchaseLine.objects.order_by("id")),
            Prefetch("refunds", queryset=Refund.objects.defer("response").order_by("id")),
        )
        .order_by("occurred_at", "id")
    )
    ledger = (
        LedgerEntry.objects.filter(member=member)
        .select_related("purchase")
        .only("kind", "points", "created_at", "expires_at", "reason", "purchase__external_id")
        .order_by("id")
    )
    messages = Message.objects.filter(member=member).order_by("created_at", "id")
    answers = (
        SurveyResponse.objects.filter(member=member)
        .select_related("survey")
        .order_by("answered_at", "id")
    )
    complaints = (
        Complaint.objects.filter(member=member)
        .select_related("category")
        .prefetch_related(Prefetch("notes", queryset=ComplaintNote.objects.order_by("id")))
        .order_by("created_at", "id")
    )
    return {
        "format": FORMAT,
        "exported_at": _time(timezone.now()),
        "profile": _profile(member),
        "consents": [
            {
                "given": event.given,
                "source": event.source,
                "text": event.text,
                "at": _time(event.created_at),
                "staff": event.staff.get_username() if event.staff else None,
            }
            for event in consents
        ],
        "purchases": [_purchase(purchase) for purchase in purchases],
        "ledger": [
            {
                "kind": entry.kind,
                "points": entry.points,
                "created_at": _time(entry.created_at),
                "expires_at": _time(entry.expires_at),
                "purchase": entry.purchase.external_id if entry.purchase else None,
                "reason": entry.reason,
            }
            for entry in ledger
        ],
        "messages": [
            {
                "created_at": _time(message.created_at),
                "purpose": message.purpose,
                "channel": message.channel,
                "to": message.address,
                "subject": message.subject,
                "text": message.body,
                "status": message.status,
                "sent_at": _time(message.sent_at),
            }
            for message in messages
        ],
        "survey_answers": [
            {
                "survey": answer.survey.kind,
                "score": answer.score,
                "reason": answer.reason,
                "comment": answer.comment,
                "channel": answer.channel,
                "answered_at": _time(answer.answered_at),
            }
            for answer in answers
        ],
        "complaints": [
            {
                "number": case.pk,
                "subject": case.subject,
                "description": case.description,
                "category": case.category.name if case.category else None,
                "source": case.source,
                "status": case.status,
                "created_at": _time(case.created_at),
                "resolution": case.resolution,
                "resolved_at": _time(case.resolved_at),
                "compensation_points": case.compensation_points,
                "notes": [
                    {"at": _time(note.created_at), "text": note.text} for note in case.notes.all()
                ],
            }
            for case in complaints
        ],
    }


def _api_caller(api_key):
    """The integrator who asked, for the audit row (a member of staff is its actor)."""
    if api_key is None:
        return {}
    return {"api_key": api_key.prefix, "store": api_key.store.code}


@transaction.atomic(durable=True)
def export_personal_data(*, member_id, staff=None, api_key=None, by_member=False):
    """A member's personal data as one file (``member_data``), at the request of the member
    through staff or an integrator, or by the member on their own page (``by_member``).
    Audited: who asked and when (``member.export``)."""
    member = Member.objects.select_related("tier", "enrolled_store").get(pk=member_id)
    data = member_data(member)
    audit(
        actor=staff,
        action="member.export",
        member=member,
        obj=member,
        after={**_api_caller(api_key), **({"by": "member"} if by_member else {})},
    )
    return data


# What erasure leaves of a complaint's subject (a required field, shown in the queue).
ERASED_SUBJECT = "—"


@transaction.atomic(durable=True)
def erase_personal_data(*, member_id, reason, staff=None, api_key=None, now=None):
    """Erase a member's personal data at their request, keeping the program's books whole.

    Name, phone, e-mail, birth date and the merchant's customer id are emptied (the phone is
    free for anyone to enrol with), and so is free text about them: complaint subjects,
    descriptions, resolutions and notes, survey comments, and the addresses and texts of the
    messages sent; the same for duplicate cards merged into this member (the same person).
    Marketing consent is withdrawn (an entry in the consent history), messages still waiting
    are cancelled and survey links not yet answered stop working. The ledger, purchases,
    scores and the member row itself stay, so balances, liability and analytics add up as
    before.

    The card is blocked, not left usable: the customer has asked to leave, and a card that still
    earned and spent would keep gathering where and when they shop on a record that no longer
    says whose it is. Blocked, it neither earns nor spends, and its points stay on
    the books and run off by the nightly expiry like any other. Audit rows written before keep
    their before/after values: the audit trail is the merchant's record of what staff did
    (kept by law), and the ledger's reasons are append-only. Erasing again changes nothing and
    returns the member as it is. Raises ``reason_required`` (400).
    """
    reason = required_reason(reason)
    member = lock_member(member_id)
    if member.erased_at is not None:
        return member
    now = now or timezone.now()
    duplicates = list(Member.objects.filter(merged_into=member).values_list("pk", flat=True))
    people = lock_members([member.pk, *duplicates])  # the duplicates change too
    ids = [person.pk for person in people]
    ConsentEvent.objects.bulk_create(
        consent_event(person, given=False, source=ConsentEvent.Source.ERASURE, staff=staff, now=now)
        for person in people
        if person.marketing_consent
    )
    Member.objects.filter(pk__in=ids).update(
        phone=None,
        email="",
        first_name="",
        last_name="",
        birth_date=None,
        external_ref=None,
        marketing_consent=False,
        consent_at=None,
        consent_source="",
        consent_text="",
        search_text=F("card_number"),
        erased_at=now,
    )
    before_status = member.status
    if member.status == Member.Status.ACTIVE:  # a merged card stays merged
        Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    member.refresh_from_db()
    Complaint.objects.filter(member_id__in=ids).update(
        subject=ERASED_SUBJECT, description="", resolution=""
    )
    ComplaintNote.objects.filter(complaint__member_id__in=ids).update(text="")
    SurveyResponse.objects.filter(member_id__in=ids).update(comment="")
    Message.objects.filter(member_id__in=ids).update(address="", subject="", body="", error="")
    cancelled = Outbox.objects.filter(member_id__in=ids, status=Outbox.Status.PENDING).update(
        status=Outbox.Status.CANCELLED, context={}
    )
    SurveyInvitation.objects.filter(
        member_id__in=ids, answered_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    audit(
        actor=staff,
        action="member.erase",
        member=member,
        obj=member,
        reason=reason,
        before={"status": before_status},
        after={
            "status": member.status,
            "cards": len(ids),
            "messages_cancelled": cancelled,
            **_api_caller(api_key),
        },
    )
    return member

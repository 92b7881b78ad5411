"""Enrolment and changes to members' own data."""

import secrets

import phonenumbers
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_member
from loyalty.models import Tier, audit
from members.models import Member, luhn_check_digit

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def normalise_phone(raw, region="RU"):
    """E.164 form of a phone typed in any common format (+7 912 …, 8 (912) …, 7912…)."""
    text = (raw or "").strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise LoyaltyError(
            "invalid",
            _("Enter a valid phone number."),
            fields={"phone": [str(_("Enter a valid phone number, e.g. +7 912 345-67-89."))]},
            status_code=400,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def new_card_number():
    """13 digits: '2' (in-store numbering), 11 random digits, a Luhn check digit."""
    while True:
        body = "2" + "".join(secrets.choice("0123456789") for _ in range(11))
        card = body + luhn_check_digit(body)
        if not Member.objects.filter(card_number=card).exists():
            return card


def new_referral_code():
    while True:
        code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))
        if not Member.objects.filter(referral_code=code).exists():
            return code


def member_exists_error(phone):
    return LoyaltyError(
        "member_exists",
        _("A member with phone %(phone)s already exists.") % {"phone": phone},
        fields={"phone": [str(_("This phone number is already enrolled."))]},
        status_code=409,
    )


def enrol_member(
    *,
    phone,
    email="",
    first_name="",
    last_name="",
    birth_date=None,
    marketing_consent=False,
    consent_text="",
    referral_code="",
    external_ref=None,
    store=None,
    channel=Member.Channel.STORE,
    language="ru",
    staff=None,
    enrolled_at=None,
    now=None,
):
    """Enrol a customer in the lowest tier with a new card number.

    The phone is normalised to E.164 and must be new (``member_exists``, 409). Marketing consent
    is recorded with its time, its source (the channel) and the text the customer agreed to.
    """
    phone = normalise_phone(phone)
    if Member.objects.filter(phone=phone).exists():
        raise member_exists_error(phone)
    try:
        return _enrol(
            phone=phone,
            email=(email or "").strip().lower(),
            first_name=(first_name or "").strip(),
            last_name=(last_name or "").strip(),
            birth_date=birth_date,
            marketing_consent=marketing_consent,
            consent_text=consent_text,
            referral_code=(referral_code or "").strip().upper(),
            external_ref=external_ref or None,
            store=store,
            channel=channel,
            language=language,
            staff=staff,
            enrolled_at=enrolled_at,
            now=now or timezone.now(),
        )
    except IntegrityError:
        if Member.objects.filter(phone=phone).exists():
            raise member_exists_error(phone) from None
        if external_ref and Member.objects.filter(external_ref=external_ref).exists():
            raise LoyaltyError(
                "member_exists",
                _("A member with this customer id already exists."),
                fields={"external_ref": [str(_("Already used by another member."))]},
                status_code=409,
            ) from None
        raise


@transaction.atomic(durable=True)
def _enrol(
    *,
    phone,
    email,
    first_name,
    last_name,
    birth_date,
    marketing_consent,
    consent_text,
    referral_code,
    external_ref,
    store,
    channel,
    language,
    staff,
    enrolled_at,
    now,
):
    referrer = None
    if referral_code:
        referrer = Member.objects.filter(referral_code=referral_code).first()
        if referrer is None:
            raise LoyaltyError(
                "invalid",
                _("Unknown referral code."),
                fields={"referral_code": [str(_("No member has this referral code."))]},
                status_code=400,
            )
    tier = Tier.objects.order_by("threshold").first()
    if tier is None:
        raise LoyaltyError("program_not_configured", _("The program has no tiers yet."))
    member = Member.objects.create(
        card_number=new_card_number(),
        phone=phone,
        email=email,
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
        language=language,
        marketing_consent=marketing_consent,
        consent_at=now if marketing_consent else None,
        consent_source=channel if marketing_consent else "",
        consent_text=consent_text if marketing_consent else "",
        tier=tier,
        tier_since=now,
        enrolled_at=enrolled_at or now,
        enrolled_store=store,
        enrolment_channel=channel,
        external_ref=external_ref,
        referral_code=new_referral_code(),
        referred_by=referrer,
        enrolled_by=staff,
    )
    if staff is not None:
        audit(
            actor=staff,
            action="member.enrol",
            member=member,
            obj=member,
            after={
                "phone": phone,
                "card_number": member.card_number,
                "marketing_consent": marketing_consent,
            },
        )
    return member


EDITABLE_FIELDS = ("phone", "email", "first_name", "last_name", "birth_date", "language")


def _snapshot(member, fields):
    return {
        name: (str(getattr(member, name)) if getattr(member, name) is not None else None)
        for name in fields
    }


@transaction.atomic(durable=True)
def update_member(*, member_id, staff, reason="", **changes):
    """Change a member's own data; the phone stays unique and normalised. Audited."""
    member = lock_member(member_id)
    unknown = set(changes) - set(EDITABLE_FIELDS) - {"marketing_consent", "consent_text"}
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "phone" in changes:
        changes["phone"] = normalise_phone(changes["phone"])
        if Member.objects.filter(phone=changes["phone"]).exclude(pk=member.pk).exists():
            raise member_exists_error(changes["phone"])
    if "email" in changes:
        changes["email"] = (changes["email"] or "").strip().lower()
    fields = [name for name, value in changes.items() if getattr(member, name) != value]
    if not fields:
        return member
    before = _snapshot(member, fields)
    for name in fields:
        setattr(member, name, changes[name])
    if "marketing_consent" in fields:
        now = timezone.now()
        member.consent_at = now if member.marketing_consent else None
        member.consent_source = Member.Channel.BACKOFFICE if member.marketing_consent else ""
        member.consent_text = changes.get("consent_text", "") if member.marketing_consent else ""
        fields += ["consent_at", "consent_source", "consent_text"]
    member.save(update_fields=fields)
    audit(
        actor=staff,
        action="member.edit",
        member=member,
        obj=member,
        reason=reason,
        before=before,
        after=_snapshot(member, [name for name in fields if name in changes]),
    )
    return member


@transaction.atomic(durable=True)
def set_member_blocked(*, member_id, blocked, reason, staff):
    """Block a card (no earning or spending) or unblock it, with a reason. Audited."""
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError(
            "reason_required",
            _("Say why."),
            fields={"reason": [str(_("A reason is required."))]},
            status_code=400,
        )
    member = lock_member(member_id)
    if member.status == Member.Status.MERGED:
        raise LoyaltyError("member_merged", _("This member was merged into another one."))
    new_status = Member.Status.BLOCKED if blocked else Member.Status.ACTIVE
    if member.status == new_status:
        return member
    before = {"status": member.status}
    member.status = new_status
    member.save(update_fields=["status"])
    audit(
        actor=staff,
        action="member.block" if blocked else "member.unblock",
        member=member,
        obj=member,
        reason=reason,
        before=before,
        after={"status": new_status},
    )
    return member


@transaction.atomic(durable=True)
def merge_members(*, source_id, target_id, reason, staff, now=None):
    """Merge a duplicate (source) into the member who stays (target).

    Purchases, open lots, debt and personal coupons move to the target; the ledger records the
    transfer on both sides (entries are never rewritten), so both balances still equal their
    ledgers. The source is marked merged and its card leads to the target from then on.
    """
    from loyalty.engine import ledger
    from loyalty.engine.locking import lock_members
    from loyalty.models import Coupon, EntryKind, PointsLot, Purchase

    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError(
            "reason_required", _("Say why."), fields={"reason": [str(_("A reason is required."))]}
        )
    if source_id == target_id:
        raise LoyaltyError("invalid", _("A member cannot be merged into themselves."))
    members = {member.pk: member for member in lock_members([source_id, target_id])}
    source, target = members[source_id], members[target_id]
    if Member.Status.MERGED in (source.status, target.status):
        raise LoyaltyError("member_merged", _("One of these members was already merged."))
    moved = {"points": source.points_balance, "debt": source.points_debt}
    moved["purchases"] = Purchase.objects.filter(member=source).update(member=target)
    PointsLot.objects.filter(member=source, remaining__gt=0).update(member=target)
    Coupon.objects.filter(member=source).update(member=target)
    if source.points_balance:
        ledger.add_entry(
            source, EntryKind.MERGE, -source.points_balance, now, staff=staff, reason=reason
        )
        ledger.add_entry(
            target, EntryKind.MERGE, source.points_balance, now, staff=staff, reason=reason
        )
    ledger.save_member_points(
        target, balance_delta=source.points_balance, debt_delta=source.points_debt
    )
    ledger.save_member_points(
        source,
        balance_delta=-source.points_balance,
        debt_delta=-source.points_debt,
        status=Member.Status.MERGED,
        merged_into=target,
    )
    audit(
        actor=staff,
        action="member.merge",
        member=target,
        obj=source,
        reason=reason,
        before={"source": source.card_number, "target": target.card_number},
        after=moved,
    )
    return target

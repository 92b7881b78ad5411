"""Enrolment and changes to members' own data."""

import phonenumbers
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine import cards, webhook_events
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.locking import lock_member
from loyalty.models import AuditLog, Tier, audit, audit_entry
from members.models import ConsentEvent, Member


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


def free_codes(count, make, field_name):
    """``count`` distinct new values of a unique member field (``card_number``,
    ``referral_code``) drawn with ``make`` that no member has yet: one query per round."""
    codes = set()
    while len(codes) < count:
        fresh = {make() for _ in range(count - len(codes))} - codes
        taken = set(
            Member.objects.filter(**{f"{field_name}__in": fresh}).values_list(field_name, flat=True)
        )
        codes |= fresh - taken
    return list(codes)


def new_card_number():
    """A random card number (``loyalty.engine.cards``) no member has yet."""
    return free_codes(1, cards.random_card, "card_number")[0]


def new_referral_code():
    return free_codes(1, cards.random_referral, "referral_code")[0]


def required_reason(reason):
    """The reason staff gave for a change, trimmed; none is ``reason_required`` (400)."""
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError(
            "reason_required",
            _("Say why."),
            fields={"reason": [str(_("A reason is required."))]},
            status_code=400,
        )
    return reason


def member_erased_error():
    return LoyaltyError(
        "member_erased", _("This member's personal data was erased."), status_code=422
    )


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
    member = _new_member(
        tier=_first_tier(),
        card_number=new_card_number(),
        referral_code=new_referral_code(),
        phone=phone,
        email=email,
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
        language=language,
        marketing_consent=marketing_consent,
        consent_text=consent_text,
        enrolled_at=enrolled_at,
        store=store,
        channel=channel,
        external_ref=external_ref,
        referrer=referrer,
        staff=staff,
        now=now,
    )
    member.save(force_insert=True)
    if (event := _enrol_consent(member, staff)) is not None:
        event.save(force_insert=True)
    if (entry := _enrol_audit(member, staff, phone)) is not None:
        entry.save(force_insert=True)
    webhook_events.member_enrolled(member, now=now)
    return member


def _first_tier():
    tier = Tier.objects.order_by("threshold").first()
    if tier is None:
        raise LoyaltyError("program_not_configured", _("The program has no tiers yet."))
    return tier


def _new_member(
    *,
    tier,
    card_number,
    referral_code,
    phone,
    email="",
    first_name="",
    last_name="",
    birth_date=None,
    language="ru",
    marketing_consent=False,
    consent_text="",
    enrolled_at=None,
    store=None,
    channel,
    external_ref=None,
    referrer=None,
    staff=None,
    now,
):
    """A new member in ``tier``, not yet saved: the one place enrolment's fields are set.

    Consent is recorded with its time (``now``), its source (the channel) and its text; the
    member is in the tier since ``now`` and enrolled at ``enrolled_at`` (default ``now``).
    """
    member = Member(
        card_number=card_number,
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
        referral_code=referral_code,
        referred_by=referrer,
        enrolled_by=staff,
    )
    member.search_text = member.build_search_text()
    return member


def consent_event(member, *, given, source, text="", staff=None, now):
    """One entry of the member's consent history, not yet saved."""
    return ConsentEvent(
        member=member, given=given, source=source, text=text, created_at=now, staff=staff
    )


def _enrol_consent(member, staff):
    """The consent given at enrolment (not yet saved), or None when the customer gave none."""
    if not member.marketing_consent:
        return None
    return consent_event(
        member,
        given=True,
        source=member.consent_source,
        text=member.consent_text,
        staff=staff,
        now=member.consent_at,
    )


def _enrol_audit(member, staff, phone):
    """The enrolment's audit row (not yet saved), or None when no staff member enrolled it.
    ``phone`` is the member's, in E.164 (given: formatting the field's value parses it again)."""
    if staff is None:
        return None
    return audit_entry(
        actor=staff,
        action="member.enrol",
        member=member,
        obj=member,
        after={
            "phone": phone,
            "card_number": member.card_number,
            "marketing_consent": member.marketing_consent,
        },
    )


@transaction.atomic(durable=True)
def enrol_members(*, rows, staff, channel=Member.Channel.IMPORT, now=None):
    """The batch form of enrol_member, for rows already checked (``members.imports``): all of
    them enrolled in one transaction, or none.

    Each row holds ``phone`` (E.164, new), ``email``, ``first_name``, ``last_name``,
    ``birth_date``, ``marketing_consent``, ``store`` (a Store or None), ``external_ref`` and
    ``enrolled_at``; an imported member's tier and consent date from when the row says they
    enrolled (default ``now``). Members, their consent history and audit rows are
    bulk-inserted. Returns the members.
    """
    now = now or timezone.now()
    tier = _first_tier()
    card_numbers = free_codes(len(rows), cards.random_card, "card_number")
    referral_codes = free_codes(len(rows), cards.random_referral, "referral_code")
    members = [
        _new_member(
            tier=tier,
            card_number=card_number,
            referral_code=referral_code,
            phone=row["phone"],
            email=row["email"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            birth_date=row["birth_date"],
            marketing_consent=row["marketing_consent"],
            store=row["store"],
            channel=channel,
            external_ref=row["external_ref"],
            staff=staff,
            now=row["enrolled_at"] or now,
        )
        for row, card_number, referral_code in zip(rows, card_numbers, referral_codes, strict=True)
    ]
    Member.objects.bulk_create(members)
    ConsentEvent.objects.bulk_create(
        event for member in members if (event := _enrol_consent(member, staff)) is not None
    )
    entries = [
        entry
        for member, row in zip(members, rows, strict=True)
        if (entry := _enrol_audit(member, staff, row["phone"])) is not None
    ]
    AuditLog.objects.bulk_create(entries)
    webhook_events.members_enrolled([member.pk for member in members], now=now)
    return members


EDITABLE_FIELDS = ("phone", "email", "first_name", "last_name", "birth_date", "language")


def _snapshot(member, fields):
    return {
        name: (str(getattr(member, name)) if getattr(member, name) is not None else None)
        for name in fields
    }


@transaction.atomic(durable=True)
def update_member(
    *,
    member_id,
    staff,
    reason="",
    consent_text="",
    source=ConsentEvent.Source.BACKOFFICE,
    **changes,
):
    """Change a member's own data; the phone stays unique and normalised. Audited.

    A change of marketing consent is recorded with its time, ``source`` (the back-office, or the
    member's own page with no staff) and ``consent_text`` (the text the customer agreed to),
    and added to the consent history.
    """
    member = lock_member(member_id)
    unknown = set(changes) - set(EDITABLE_FIELDS) - {"marketing_consent"}
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if member.erased_at is not None:
        raise member_erased_error()
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
    audited = list(fields)
    if "marketing_consent" in fields:
        now = timezone.now()
        given = member.marketing_consent
        member.consent_at = now if given else None
        member.consent_source = source if given else ""
        member.consent_text = consent_text if given else ""
        fields += ["consent_at", "consent_source", "consent_text"]
        consent_event(
            member,
            given=given,
            source=source,
            text=member.consent_text,
            staff=staff,
            now=now,
        ).save(force_insert=True)
    member.save(update_fields=fields)
    audit(
        actor=staff,
        action="member.edit",
        member=member,
        obj=member,
        reason=reason,
        before=before,
        after=_snapshot(member, audited),
    )
    return member


@transaction.atomic(durable=True)
def set_member_blocked(*, member_id, blocked, reason, staff):
    """Block a card (no earning or spending) or unblock it, with a reason. Audited."""
    reason = required_reason(reason)
    member = lock_member(member_id)
    if member.status == Member.Status.MERGED:
        raise LoyaltyError("member_merged", _("This member was merged into another one."))
    if member.erased_at is not None:
        raise member_erased_error()
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
    reason = required_reason(reason)
    if source_id == target_id:
        raise LoyaltyError("invalid", _("A member cannot be merged into themselves."))
    members = {member.pk: member for member in lock_members([source_id, target_id])}
    source, target = members[source_id], members[target_id]
    if Member.Status.MERGED in (source.status, target.status):
        raise LoyaltyError("member_merged", _("One of these members was already merged."))
    if source.erased_at is not None or target.erased_at is not None:
        raise member_erased_error()
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

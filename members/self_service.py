"""The member's own page: a one-time link by e-mail or SMS, then a session of the member's own.

No password. The member types their phone or e-mail on a public page (or staff sends the link
from the member page); the link's token is 256 random bits of which only the SHA-256 is kept,
works once and for LINK_LIFETIME. Opening it starts a ``MemberSession``: its own cookie, its own
table, nothing to do with staff sign-in, so a member can never open a back-office page. Every
request for a link and every link that did not work is counted (``SignInAttempt``) and
throttled. The request page answers the same whether or not the contact belongs to a member.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.engine import outbox
from loyalty.engine.errors import LoyaltyError
from loyalty.models import Coupon, EntryKind, LedgerEntry, PointsLot, ProgramSettings, audit
from members.models import Member, MemberLoginLink, MemberSession, SignInAttempt
from members.services import normalise_phone
from messaging.models import Purpose

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
# The throttle's window, and what it allows in it: links asked for one contact (whoever asks),
# links asked from one address, and links tried from one address that did not work.
THROTTLE_WINDOW = timedelta(minutes=15)
LINKS_PER_CONTACT = 3
REQUESTS_PER_ADDRESS = 10
FAILED_TRIES_PER_ADDRESS = 10
# A shared family e-mail may belong to several cards: each gets its own link, up to this many.
CARDS_PER_EMAIL = 5
SESSION_COOKIE = "member_session"
SESSION_COOKIE_PATH = "/me/"


def _hash(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def throttled_error():
    return LoyaltyError(
        "sign_in_throttled",
        _("Too many attempts from here. Wait 15 minutes and try again."),
        status_code=429,
    )


def link_error():
    return LoyaltyError(
        "sign_in_link_invalid",
        _(
            "This link does not work: it was used already, it has expired or it was copied "
            "incompletely. Ask for a new one."
        ),
        status_code=400,
    )


def _attempts(kind, key, now):
    return SignInAttempt.objects.filter(
        kind=kind, key_hash=_hash(key), created_at__gt=now - THROTTLE_WINDOW
    ).count()


def _record(kind, key, now):
    SignInAttempt.objects.create(kind=kind, key_hash=_hash(key), created_at=now)


def _members_with(contact):
    """The active members a typed contact names ("" when it is neither a phone nor an e-mail,
    which the form refuses before this)."""
    active = Member.objects.filter(status=Member.Status.ACTIVE, erased_at__isnull=True)
    if "@" in contact:
        email = contact.strip().lower()
        return (
            email,
            MemberLoginLink.Channel.EMAIL,
            list(active.filter(email=email)[:CARDS_PER_EMAIL]),
        )
    phone = normalise_phone(contact)  # raises ``invalid_phone`` for what is not a phone
    return phone, MemberLoginLink.Channel.SMS, list(active.filter(phone=phone))


def _new_link(member, channel, now, staff=None):
    """A link row and its outbox message (in the caller's transaction). Returns the raw token."""
    raw = secrets.token_urlsafe(32)
    link = MemberLoginLink.objects.create(
        member=member,
        token_hash=_hash(raw),
        channel=channel,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
        staff=staff,
    )
    outbox.enqueue(
        member_id=member.pk,
        purpose=Purpose.SIGN_IN_LINK,
        key=f"sign_in_link:{link.pk}",
        context={
            "link": settings.SITE_URL.rstrip("/") + reverse("me:sign-in-link", args=[raw]),
            "expires_at": link.expires_at,
            "channel": channel,
        },
        now=now,
    )
    return raw


@transaction.atomic(durable=True)
def request_sign_in_link(*, contact, address, now=None):
    """Send a one-time link to the member whose phone or e-mail was typed, from ``address``
    (the asker's IP). Says nothing of whether anyone has that contact: the caller shows one
    answer either way. At most LINKS_PER_CONTACT links per contact and REQUESTS_PER_ADDRESS
    requests per address in THROTTLE_WINDOW; past the contact's limit nothing more is sent
    (silently, so the limit cannot tell a member from a stranger). Raises ``invalid_phone``
    (400) for text that is neither, and ``sign_in_throttled`` (429) past the address's limit.
    Returns the number of links written (for tests and logs only, never shown).
    """
    now = now or timezone.now()
    if _attempts(SignInAttempt.Kind.REQUEST_BY_ADDRESS, address, now) >= REQUESTS_PER_ADDRESS:
        raise throttled_error()
    key, channel, members = _members_with(contact)
    _record(SignInAttempt.Kind.REQUEST_BY_ADDRESS, address, now)
    over = _attempts(SignInAttempt.Kind.REQUEST_FOR_CONTACT, key, now) >= LINKS_PER_CONTACT
    _record(SignInAttempt.Kind.REQUEST_FOR_CONTACT, key, now)
    if over:
        return 0
    for member in members:
        _new_link(member, channel, now)
    return len(members)


@transaction.atomic(durable=True)
def send_sign_in_link(*, member_id, staff, now=None):
    """Staff send the member a link to their own page (by e-mail when the member has one,
    else by SMS). Audited. Raises ``no_contact`` (422) for a member with neither, and
    ``member_blocked`` (422) for a card that is not active."""
    now = now or timezone.now()
    member = Member.objects.get(pk=member_id)
    if member.status != Member.Status.ACTIVE or member.erased_at is not None:
        raise LoyaltyError("member_blocked", _("The card is blocked or merged."))
    if member.email:
        channel = MemberLoginLink.Channel.EMAIL
    elif member.phone:
        channel = MemberLoginLink.Channel.SMS
    else:
        raise LoyaltyError("no_contact", _("The member has no e-mail or phone to send it to."))
    _new_link(member, channel, now, staff=staff)
    audit(
        actor=staff,
        action="member.send_sign_in_link",
        member=member,
        obj=member,
        after={"channel": channel},
    )
    return channel


@transaction.atomic(durable=True)
def _claim(token, now):
    """Use the link once: the conditional UPDATE lets one of two simultaneous clicks win."""
    token_hash = _hash(token)
    claimed = MemberLoginLink.objects.filter(
        token_hash=token_hash,
        used_at__isnull=True,
        expires_at__gt=now,
        member__status=Member.Status.ACTIVE,
    ).update(used_at=now)
    if not claimed:
        return None, None
    link = MemberLoginLink.objects.select_related("member").get(token_hash=token_hash)
    raw = secrets.token_urlsafe(32)
    MemberSession.objects.create(
        member=link.member,
        key_hash=_hash(raw),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    return link.member, raw


def sign_in_with_link(*, token, address, now=None):
    """Open the member's own page with a link's token: the link is used up and a session key
    returned (the caller puts it in the member's cookie) with the member.

    Raises ``sign_in_link_invalid`` (400) for a token that is unknown, used, expired or of a
    card no longer active, and ``sign_in_throttled`` (429) once FAILED_TRIES_PER_ADDRESS tries
    from the address did not work (then even a good link waits, so guessing gains nothing).
    A failed try is counted in a transaction of its own: it must stay although the try fails.
    """
    now = now or timezone.now()
    if _attempts(SignInAttempt.Kind.TRY_BY_ADDRESS, address, now) >= FAILED_TRIES_PER_ADDRESS:
        raise throttled_error()
    member = raw = None
    if token and len(token) <= 100:
        member, raw = _claim(token, now)
    if member is None:
        _record(SignInAttempt.Kind.TRY_BY_ADDRESS, address, now)
        raise link_error()
    return member, raw


def member_for_session(raw, now=None):
    """The member a session cookie belongs to, or None (no such session, ended, expired, or
    the card is no longer active)."""
    if not raw or len(raw) > 100:
        return None
    now = now or timezone.now()
    session = (
        MemberSession.objects.select_related("member", "member__tier", "member__enrolled_store")
        .filter(
            key_hash=_hash(raw),
            ended_at__isnull=True,
            expires_at__gt=now,
            member__status=Member.Status.ACTIVE,
        )
        .first()
    )
    return session.member if session is not None else None


def end_sessions(*, member_id=None, raw=None, now=None):
    """Sign out: one session (its cookie's ``raw`` key) or every session of a member."""
    now = now or timezone.now()
    sessions = MemberSession.objects.filter(ended_at__isnull=True)
    if raw is not None:
        sessions = sessions.filter(key_hash=_hash(raw))
    elif member_id is not None:
        sessions = sessions.filter(member_id=member_id)
    else:
        return 0
    return sessions.update(ended_at=now)


# --- What the page shows -----------------------------------------------------------------------


def member_lots(member, now):
    """The member's lots with points left, soonest expiry first, pending ones included."""
    return list(
        PointsLot.objects.filter(member_id=member.pk, remaining__gt=0, expires_at__gt=now)
        .select_related("purchase", "purchase__store")
        .only(
            "points",
            "remaining",
            "available_from",
            "expires_at",
            "purchase__external_id",
            "purchase__store__name",
        )
        .order_by("expires_at", "id")
    )


def member_history(member):
    """The member's ledger, newest first, with the receipt and store of each purchase."""
    return (
        LedgerEntry.objects.filter(member_id=member.pk)
        .select_related("purchase", "purchase__store")
        .only(
            "created_at",
            "kind",
            "points",
            "expires_at",
            "reason",
            "purchase__external_id",
            "purchase__store__name",
        )
        .order_by("-id")
    )


def entry_reason(entry):
    """Why the points moved, in the member's words: the staff's or the job's reason when one
    was written, else what the kind of entry and its receipt say."""
    if entry.reason:
        return entry.reason
    receipt = entry.purchase.external_id if entry.purchase_id else ""
    store = entry.purchase.store.name if entry.purchase_id else ""
    by_kind = {
        EntryKind.EARN: _("Purchase %(receipt)s at %(store)s"),
        EntryKind.REDEEM: _("Paid with points: purchase %(receipt)s at %(store)s"),
        EntryKind.REFUND_REVERSAL: _("Refund of purchase %(receipt)s"),
        EntryKind.REFUND_RETURN: _("Points given back by the refund of purchase %(receipt)s"),
    }
    if receipt and entry.kind in by_kind:
        return by_kind[entry.kind] % {"receipt": receipt, "store": store}
    return {
        EntryKind.EARN: _("Points earned"),
        EntryKind.BONUS: _("Bonus points"),
        EntryKind.REDEEM: _("Points spent"),
        EntryKind.EXPIRE: _("Points expired"),
        EntryKind.ADJUST: _("Correction by the store"),
        EntryKind.REFUND_REVERSAL: _("Points taken back by a refund"),
        EntryKind.REFUND_RETURN: _("Points given back by a refund"),
        EntryKind.MERGE: _("Moved from a card merged into this one"),
    }.get(entry.kind, _("Change of points"))


def member_coupons(member, now):
    """The member's personal coupons that can still be used, soonest to end first."""
    coupons = Coupon.objects.filter(member_id=member.pk, is_active=True).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    )
    return [
        coupon
        for coupon in coupons.order_by("valid_until", "id")
        if coupon.max_uses is None or coupon.uses < coupon.max_uses
    ]


def referral(member, program=None):
    """The member's referral code and what it brings each side, or None when the program gives
    no referral points (a friend names the code when joining; after the friend's first purchase
    both are credited, ``loyalty.engine.referrals``)."""
    program = program or ProgramSettings.cached()
    if not program.referral_points:
        return None
    return {"code": member.referral_code, "points": program.referral_points}

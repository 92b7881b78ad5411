"""Messages to members: templates per purpose and language, the outbox, and the message log.

Work that must tell a member writes an ``Outbox`` row in its own transaction (so the message is
never lost, whatever happens to the broker); the ``deliver_messages`` task drains the outbox,
applies consent, quiet hours and the frequency cap, sends, and writes the ``Message`` log that
the member page shows.
"""

import datetime

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Purpose(models.TextChoices):
    """Every kind of message there is: ``enqueue`` and the outbox refuse any other, and each has
    a built-in text per language in ``messaging.defaults``."""

    EXPIRY_REMINDER = "expiry_reminder", _("Points expiry reminder")
    BIRTHDAY_OFFER = "birthday_offer", _("Birthday offer")
    POINTS_AVAILABLE = "points_available", _("Points became available")
    REFERRAL_REWARD = "referral_reward", _("Referral reward")
    MEMBERSHIP_JOINED = "membership_joined", _("Membership joined")
    MEMBERSHIP_RENEWED = "membership_renewed", _("Membership renewed")
    MEMBERSHIP_LAPSED = "membership_lapsed", _("Membership lapsed")
    CAMPAIGN = "campaign", _("Campaign")
    SURVEY = "survey", _("Survey")
    CSAT_SURVEY = "csat_survey", _("Satisfaction survey after a complaint")
    SIGN_IN_LINK = "sign_in_link", _("Link to the member's own page")


# Offers and nudges: sent only with marketing consent and counted against the frequency cap.
# The others tell the member about their own account and go regardless of consent; the
# satisfaction survey follows up the member's own complaint, so it is one of them.
MARKETING_PURPOSES = frozenset(
    {Purpose.EXPIRY_REMINDER, Purpose.BIRTHDAY_OFFER, Purpose.CAMPAIGN, Purpose.SURVEY}
)

# Asked for by the member a moment ago and useless after a few minutes: sent at once, even in
# the quiet hours, to the contact the member typed (``channel`` in the context). Their text
# holds a link that opens the member's account, so the message log keeps it masked.
ON_REQUEST_PURPOSES = frozenset({Purpose.SIGN_IN_LINK})


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")


class MessageTemplate(models.Model):
    """The text of one purpose in one channel and language, with {{ fields }} of the member.

    When no row exists the built-in text of ``messaging.defaults`` is used.
    """

    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    language = models.CharField(
        _("language"), max_length=8, choices=[("ru", "Русский"), ("en", "English")]
    )
    subject = models.CharField(_("subject (e-mail)"), max_length=200, blank=True)
    body = models.TextField(
        _("text"),
        help_text=_(
            "Fields: {{ first_name }}, {{ balance }}, {{ points }}, {{ expires_at }}, "
            "{{ offer }}, {{ plan }}, {{ card_number }}."
        ),
    )

    class Meta:
        ordering = ["purpose", "channel", "language"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "channel", "language"], name="message_template_unique"
            )
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} · {self.get_channel_display()} · {self.language}"


class MessagingSettings(models.Model):
    """Quiet hours (they hold SMS; e-mail goes at any hour) and the frequency cap (row id 1)."""

    quiet_from = models.TimeField(_("quiet hours from"), default=datetime.time(21, 0))
    quiet_until = models.TimeField(_("quiet hours until"), default=datetime.time(9, 0))
    cap_messages = models.PositiveIntegerField(_("at most this many offers per member"), default=3)
    cap_days = models.PositiveIntegerField(_("within this many days"), default=7)

    class Meta:
        verbose_name = _("message settings")
        verbose_name_plural = _("message settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="messaging_settings_single_row")
        ]

    def __str__(self):
        return str(_("Message settings"))

    @classmethod
    def load(cls):
        settings, _created = cls.objects.get_or_create(id=1)
        return settings


class Outbox(models.Model):
    """A message that must be sent: written in the transaction of the work that causes it.

    ``key`` makes enqueueing idempotent (a job run twice enqueues once).
    """

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("outbox", "Waiting")
        DONE = "done", pgettext_lazy("outbox", "Handled")
        FAILED = "failed", pgettext_lazy("outbox", "Failed")
        # Never to be sent: the member's personal data was erased before it went.
        CANCELLED = "cancelled", pgettext_lazy("outbox", "Cancelled")

    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="+", verbose_name=_("member")
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices, verbose_name=_("purpose"))
    context = models.JSONField(default=dict, blank=True, verbose_name=_("context"))
    key = models.CharField(max_length=128, unique=True, verbose_name=_("event key"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    not_before = models.DateTimeField(verbose_name=_("not before"))
    # A delivering worker leases the row until this time; a worker that died loses the lease.
    leased_until = models.DateTimeField(null=True, blank=True, verbose_name=_("leased until"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        indexes = [
            models.Index(
                fields=["not_before", "id"],
                condition=Q(status="pending"),
                name="outbox_due_idx",
            )
        ]
        constraints = [
            # Jobs insert outbox rows in SQL too: the database refuses a purpose with no text.
            models.CheckConstraint(
                condition=Q(purpose__in=Purpose.values), name="outbox_purpose_known"
            )
        ]

    def __str__(self):
        return self.key


class Message(models.Model):
    """The log: every message sent, suppressed or failed, as the member page shows it."""

    class Status(models.TextChoices):
        SENDING = "sending", pgettext_lazy("message", "Sending")
        SENT = "sent", pgettext_lazy("message", "Sent")
        SUPPRESSED = "suppressed", pgettext_lazy("message", "Not sent")
        FAILED = "failed", pgettext_lazy("message", "Failed")

    class Reason(models.TextChoices):
        NONE = "", "—"
        NO_CONSENT = "no_consent", _("No marketing consent")
        FREQUENCY_CAP = "frequency_cap", _("Frequency cap reached")
        NO_CONTACT = "no_contact", _("No e-mail or phone")
        INACTIVE = "inactive", _("Card blocked or merged")
        ERROR = "error", _("Delivery error")
        BAD_TEXT = "bad_text", _("The message text could not be built")

    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("member"),
    )
    outbox = models.ForeignKey(
        Outbox,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("outbox row"),
    )
    purpose = models.CharField(_("purpose"), max_length=32, choices=Purpose.choices)
    is_marketing = models.BooleanField(default=False, verbose_name=_("marketing"))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, blank=True)
    address = models.CharField(_("to"), max_length=254, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    reason = models.CharField(
        _("why"), max_length=16, choices=Reason.choices, blank=True, default=""
    )
    error = models.TextField(_("error"), blank=True)
    provider_id = models.CharField(_("provider's id"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("time"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["member", "-created_at", "-id"], name="message_member_time_idx"),
        ]

    def __str__(self):
        return f"{self.purpose} → {self.address or self.member_id} ({self.status})"

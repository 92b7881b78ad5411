"""Members: the merchant's customers in the program."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import ExtractDay, ExtractMonth
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from phonenumber_field.modelfields import PhoneNumberField


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("member status", "Active")
        BLOCKED = "blocked", pgettext_lazy("member status", "Blocked")
        MERGED = "merged", pgettext_lazy("member status", "Merged")

    class Channel(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online")
        APP = "app", _("App")
        IMPORT = "import", _("Import")
        BACKOFFICE = "backoffice", _("Back-office")

    card_number = models.CharField(_("card number"), max_length=13, unique=True)
    # Empty only once the member's personal data was erased: the number is free again.
    phone = PhoneNumberField(_("phone"), unique=True, null=True)
    email = models.EmailField(_("e-mail"), blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=8, default="ru")
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    consent_at = models.DateTimeField(_("consent given at"), null=True, blank=True)
    consent_source = models.CharField(_("consent source"), max_length=32, blank=True)
    consent_text = models.TextField(_("consent text"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    tier = models.ForeignKey(
        "loyalty.Tier", on_delete=models.PROTECT, related_name="members", verbose_name=_("tier")
    )
    tier_since = models.DateTimeField(_("in this tier since"), null=True, blank=True)
    below_tier_since = models.DateTimeField(
        _("below the tier's threshold since"), null=True, blank=True
    )
    # Cached sums, changed only by the ledger services with relative updates under the
    # member's row lock: balance = sum of ledger entries; debt = points reversed after they
    # were spent, repaid first by later earnings.
    points_balance = models.IntegerField(_("points balance"), default=0)
    points_debt = models.IntegerField(_("points debt"), default=0)
    enrolled_at = models.DateTimeField(_("enrolled at"), db_index=True)
    enrolled_store = models.ForeignKey(
        "loyalty.Store",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="enrolled_members",
        verbose_name=_("enrolled in store"),
    )
    enrolment_channel = models.CharField(
        _("enrolment channel"), max_length=16, choices=Channel.choices, default=Channel.STORE
    )
    external_ref = models.CharField(
        _("merchant's customer id"), max_length=64, null=True, blank=True, unique=True
    )
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True)
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_members",
        verbose_name=_("merged into"),
    )
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("enrolled by"),
    )
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True)
    # Lower-case names, e-mail, phone digits and card number, for search as you type
    # (a trigram index on PostgreSQL makes "contains" fast at millions of rows).
    search_text = models.TextField(editable=False, default="", verbose_name=_("search text"))

    class Meta:
        ordering = ["-enrolled_at"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.CheckConstraint(condition=Q(points_debt__gte=0), name="member_debt_gte_0"),
            models.CheckConstraint(
                condition=Q(marketing_consent=False) | Q(consent_at__isnull=False),
                name="member_consent_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["email"], name="member_email_idx"),
            models.Index(fields=["last_name", "first_name"], name="member_name_idx"),
            # Today's birthdays (birthday_offers): the same expressions as the ORM's
            # birth_date__month / birth_date__day lookups, so the planner can use it.
            models.Index(
                ExtractMonth("birth_date"), ExtractDay("birth_date"), name="member_birthday_idx"
            ),
            # The few members who are not active (blocked, merged): a segment count of purchase
            # criteria alone counts the snapshot's buyers less these (members.segments).
            models.Index(
                fields=["id"], condition=~Q(status="active"), name="member_not_active_idx"
            ),
        ]

    def __str__(self):
        label = self.full_name or (str(self.phone) if self.phone else "")
        return f"{label} ({self.card_number})" if label else self.card_number

    def save(self, *args, **kwargs):
        self.search_text = self.build_search_text()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "search_text"}
        super().save(*args, **kwargs)

    @property
    def status_label(self):
        """The status in the reader's language; cheaper than get_status_display() in long lists
        (which rebuilds and translates the whole choices table for every row)."""
        return self.Status(self.status).label

    def build_search_text(self):
        phone_digits = str(self.phone or "").lstrip("+")
        parts = (self.first_name, self.last_name, self.email, phone_digits, self.card_number)
        return " ".join(part for part in parts if part).lower()

    @property
    def full_name(self):
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def is_blocked(self):
        return self.status == self.Status.BLOCKED


class ConsentEvent(models.Model):
    """One change of a member's marketing consent, kept for good: given or withdrawn, where,
    the exact text the customer was shown, when and by whom (152-FZ: consent must be provable).

    ``Member.marketing_consent`` and its ``consent_*`` fields hold the current state; this is
    its history, written by every service that changes it.
    """

    class Source(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online")
        APP = "app", _("App")
        IMPORT = "import", _("Import")
        BACKOFFICE = "backoffice", _("Back-office")
        ERASURE = "erasure", _("Erasure of personal data")
        MEMBER_PAGE = "member_page", _("The member's own page")

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="consent_events", verbose_name=_("member")
    )
    given = models.BooleanField(_("given"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    text = models.TextField(_("text shown"), blank=True)
    created_at = models.DateTimeField(_("time"))
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent history")
        indexes = [models.Index(fields=["member", "-created_at"], name="consent_member_time_idx")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {'given' if self.given else 'withdrawn'}"


class MemberLoginLink(models.Model):
    """A one-time link to the member's own page, sent by e-mail or SMS: only the SHA-256 of its
    256-bit token is kept, it works once and only until ``expires_at``."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Who sent it: empty when the member asked for it on the public page.
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["member", "-created_at"], name="login_link_member_idx")]

    def __str__(self):
        return f"login link {self.pk} ({self.member_id})"


class MemberSession(models.Model):
    """A member signed in to their own page: the cookie holds a random key, the database its
    SHA-256. Separate from staff sessions (Django's), so it can never open a back-office page."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"member session {self.pk} ({self.member_id})"


class SignInAttempt(models.Model):
    """One request for a link, or one try of a link, by an address or for a contact (kept as
    a SHA-256, never the contact itself): what the throttle of the member's sign-in counts."""

    class Kind(models.TextChoices):
        REQUEST_BY_ADDRESS = "request_ip", "request by address"
        REQUEST_FOR_CONTACT = "request_contact", "request for contact"
        TRY_BY_ADDRESS = "try_ip", "link tried by address"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["kind", "key_hash", "created_at"], name="signin_try_idx")]

    def __str__(self):
        return f"{self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class ImportJob(models.Model):
    """A CSV import running in Celery; progress lives here so any page can show it."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("Members")
        PURCHASES = "purchases", _("Purchases")

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("import", "Waiting")
        RUNNING = "running", pgettext_lazy("import", "Running")
        DONE = "done", pgettext_lazy("import", "Done")
        FAILED = "failed", pgettext_lazy("import", "Failed")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    earn_points = models.BooleanField(_("earn points for imported purchases"), default=False)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    total = models.PositiveIntegerField(_("rows"), default=0)
    done = models.PositiveIntegerField(_("rows processed"), default=0)
    imported = models.PositiveIntegerField(_("rows imported"), default=0)
    error_count = models.PositiveIntegerField(_("rows with errors"), default=0)
    error_report = models.TextField(_("error report"), blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    # When a worker was sent the job; empty while the broker could not take it
    # (loyalty.web.taskqueue).
    enqueued_at = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("queued at")
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def percent(self):
        return int(self.done * 100 / self.total) if self.total else 0

    @property
    def is_finished(self):
        return self.status in (self.Status.DONE, self.Status.FAILED)

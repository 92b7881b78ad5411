"""Campaign mechanics: segments, campaigns, recipients (coupons: loyalty.models.coupons)."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loyalty.models import Coupon


class Segment(models.Model):
    """A saved, named member filter; ``definition`` holds the criteria of the segment form
    (see ``members.segments.segment_members`` for what each one means)."""

    name = models.CharField(_("name"), max_length=200)
    definition = models.JSONField(_("criteria"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self):
        return self.name


class Campaign(models.Model):
    """An offer to a segment, with a control group that gets nothing (SPEC section 2)."""

    class Kind(models.TextChoices):
        BONUS_POINTS = "bonus_points", _("Bonus points")
        MULTIPLIER = "multiplier", _("Earn multiplier")
        COUPON = "coupon", _("Personal coupon")
        MESSAGE = "message", _("Message only (win-back or other offer)")
        FREE_TRIAL = "free_trial", _("Free trial of a paid membership")

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("campaign", "Draft")
        SCHEDULED = "scheduled", pgettext_lazy("campaign", "Scheduled")
        SENDING = "sending", pgettext_lazy("campaign", "Sending")
        RUNNING = "running", pgettext_lazy("campaign", "Running daily")
        DONE = "done", pgettext_lazy("campaign", "Sent")
        CANCELLED = "cancelled", pgettext_lazy("campaign", "Cancelled")

    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    control_percent = models.PositiveSmallIntegerField(
        _("control group, %"),
        default=10,
        help_text=_("This share of the segment gets nothing, to measure the effect."),
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    # Bonus points
    points = models.PositiveIntegerField(_("bonus points"), default=0)
    points_expiry_days = models.PositiveIntegerField(_("points expire after, days"), default=30)
    # Earn multiplier
    factor = models.DecimalField(_("multiplier"), max_digits=4, decimal_places=2, default=2)
    starts_at = models.DateTimeField(_("multiplier from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("multiplier until"), null=True, blank=True)
    stores = models.ManyToManyField(
        "loyalty.Store",
        blank=True,
        related_name="+",
        verbose_name=_("only in stores"),
        help_text=_("Leave empty for every store."),
    )
    # Personal coupon
    coupon_kind = models.CharField(
        _("coupon kind"), max_length=16, choices=Coupon.Kind.choices, blank=True
    )
    coupon_value = models.DecimalField(
        _("coupon value"), max_digits=12, decimal_places=2, default=0
    )
    coupon_sku = models.CharField(_("coupon SKU"), max_length=100, blank=True)
    coupon_min_amount = models.DecimalField(
        _("coupon minimum purchase"), max_digits=12, decimal_places=2, default=0
    )
    coupon_valid_days = models.PositiveIntegerField(_("coupon valid for, days"), default=30)
    # Free trial of a paid membership
    trial_plan = models.ForeignKey(
        "loyalty.MembershipPlan",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("membership plan of the trial"),
        help_text=_("Members who never had this plan get its free trial; it does not renew."),
    )
    # Message, per language (empty: no message)
    subject_ru = models.CharField(_("subject (Russian)"), max_length=200, blank=True)
    message_ru = models.TextField(_("message (Russian)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    message_en = models.TextField(_("message (English)"), blank=True)
    results_days = models.PositiveIntegerField(_("results window, days"), default=30)
    # Win-back: a campaign that runs every day (status running) for the segment's members
    # whose last purchase was exactly this many days before; each day's run is a campaign of
    # its own (``parent``: the win-back; ``run_on``: its day), sent as any other.
    lapsed_days = models.PositiveIntegerField(
        _("win-back: last purchase this many days ago"),
        null=True,
        blank=True,
        help_text=_(
            "Leave empty for a one-off send. Filled in, the campaign runs every day for the "
            "segment's members whose last purchase was exactly this many days before, so each "
            "member gets it once each time they lapse."
        ),
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="runs",
        verbose_name=_("parent campaign"),
    )
    run_on = models.DateField(_("run of"), null=True, blank=True)
    # The window the results count purchases in, fixed when the send starts (results_window).
    results_from = models.DateTimeField(null=True, blank=True, verbose_name=_("results from"))
    results_until = models.DateTimeField(null=True, blank=True, verbose_name=_("results until"))
    survey_at_end = models.BooleanField(
        _("ask for NPS when the results window ends"),
        default=False,
        help_text=_("Test and control groups alike, members with marketing consent."),
    )
    # When the end-of-campaign survey went out (surveys.jobs.campaign_surveys).
    surveyed_at = models.DateTimeField(_("surveyed"), null=True, blank=True)
    # The segment's criteria as they were when the send started: every chunk selects by this
    # copy, so editing the segment during a send cannot change who the send reaches.
    definition = models.JSONField(_("criteria at send"), default=dict, blank=True)
    # Progress of the send, in chunks of members (see campaigns.services)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    total = models.PositiveIntegerField(_("members to send to"), default=0)
    done = models.PositiveIntegerField(_("members done"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(control_percent__lte=90), name="campaign_control_lte_90"
            ),
            models.CheckConstraint(
                condition=Q(lapsed_days__isnull=True) | Q(lapsed_days__gte=1),
                name="campaign_lapsed_days_gte_1",
            ),
            models.CheckConstraint(condition=Q(factor__gte=1), name="campaign_factor_gte_1"),
            models.CheckConstraint(
                condition=Q(done__lte=F("total")), name="campaign_done_lte_total"
            ),
            models.UniqueConstraint(
                fields=["parent", "run_on"],
                condition=Q(parent__isnull=False),
                name="campaign_run_once_a_day",
            ),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_at"],
                condition=Q(status="scheduled"),
                name="campaign_due_idx",
            ),
            models.Index(
                fields=["starts_at", "ends_at"],
                condition=Q(kind="multiplier"),
                name="campaign_multiplier_idx",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def status_label(self):
        return self.Status(self.status).label

    @property
    def percent(self):
        if self.status == self.Status.DONE:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0

    @property
    def is_editable(self):
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)

    def can_cancel(self, now=None):
        """Before or during its send; a sent multiplier also while its window is still open
        (cancelling it stops the extra points)."""
        if self.status in (
            self.Status.DRAFT,
            self.Status.SCHEDULED,
            self.Status.SENDING,
            self.Status.RUNNING,
        ):
            return True
        return (
            self.status == self.Status.DONE
            and self.kind == self.Kind.MULTIPLIER
            and self.ends_at is not None
            and self.ends_at > (now or timezone.now())
        )

    @property
    def is_cancellable(self):
        return self.can_cancel()

    def results_window(self):
        """(start, end) of the purchases its results count: from the send (a multiplier: from
        its window's start) for ``results_days``; (None, None) before the send. A win-back's
        window is its first run's start to its last run's end."""
        if self.results_from is not None:
            return self.results_from, self.results_until
        start = self.starts_at if self.kind == self.Kind.MULTIPLIER else None
        start = start or self.sent_at
        if start is None:
            return None, None
        return start, start + timedelta(days=self.results_days)

    def offers(self, variants=None):
        """Variant 1 (the campaign's own offer) and its other variants, in number order, each
        with its share of the segment: variant 1 takes what control and the others leave.
        ``variants`` are the campaign's ``CampaignVariant`` rows when already read."""
        others = sorted(
            self.variants.all() if variants is None else variants, key=lambda v: v.number
        )
        first = CampaignVariant(
            campaign=self,
            number=1,
            share=100 - self.control_percent - sum(v.share for v in others),
            points=self.points,
            factor=self.factor,
            coupon_value=self.coupon_value,
            subject_ru=self.subject_ru,
            message_ru=self.message_ru,
            subject_en=self.subject_en,
            message_en=self.message_en,
        )
        return [first, *others]


class CampaignVariant(models.Model):
    """A second, third or fourth offer of a campaign, each with its own share of the segment,
    compared with the same control group. Variant 1 is the campaign's own offer (its fields);
    a variant's empty message means the campaign's message."""

    MAX_NUMBER = 4

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    number = models.PositiveSmallIntegerField(_("variant"))
    share = models.PositiveSmallIntegerField(_("share of the segment, %"))
    points = models.PositiveIntegerField(_("bonus points"), default=0)
    factor = models.DecimalField(_("multiplier"), max_digits=4, decimal_places=2, default=2)
    coupon_value = models.DecimalField(
        _("coupon value"), max_digits=12, decimal_places=2, default=0
    )
    subject_ru = models.CharField(_("subject (Russian)"), max_length=200, blank=True)
    message_ru = models.TextField(_("message (Russian)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    message_en = models.TextField(_("message (English)"), blank=True)

    class Meta:
        ordering = ["campaign", "number"]
        verbose_name = _("campaign variant")
        verbose_name_plural = _("campaign variants")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_variant_unique"),
            models.CheckConstraint(
                condition=Q(number__gte=2) & Q(number__lte=4), name="campaign_variant_2_4"
            ),
            models.CheckConstraint(condition=Q(share__gte=1), name="campaign_variant_share"),
            models.CheckConstraint(condition=Q(factor__gte=1), name="campaign_variant_factor"),
        ]

    def __str__(self):
        return f"{self.campaign_id} #{self.number}"

    def text(self, language):
        """(subject, message) in a language, the campaign's own when this variant has none."""
        subject = getattr(self, f"subject_{language}")
        message = getattr(self, f"message_{language}")
        if self.number > 1 and not (self.message_ru or self.message_en):
            subject = getattr(self.campaign, f"subject_{language}")
            message = getattr(self.campaign, f"message_{language}")
        return subject, message


class CampaignChunk(models.Model):
    """One Celery message of a send: the segment's members with ids in [low, high)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="chunks")
    low = models.BigIntegerField()
    high = models.BigIntegerField()
    size = models.PositiveIntegerField(default=0)
    recipients = models.PositiveIntegerField(default=0)
    is_done = models.BooleanField(default=False)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "low"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "low"], name="campaign_chunk_unique")
        ]

    def __str__(self):
        return f"{self.campaign_id}: [{self.low}, {self.high})"


class CampaignRecipient(models.Model):
    """A member a campaign targeted, in its test group (got the offer) or control group."""

    class Group(models.TextChoices):
        TEST = "test", pgettext_lazy("campaign group", "Test")
        CONTROL = "control", pgettext_lazy("campaign group", "Control")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="campaign_recipients"
    )
    group = models.CharField(_("group"), max_length=8, choices=Group.choices, db_column="grp")
    # The offer a test-group member got (CampaignVariant.number; 1 is the campaign's own), 0
    # in the control group.
    variant = models.PositiveSmallIntegerField(_("variant"), default=1)
    # The chunk run that inserted the row: its grants, coupons and messages find it by this.
    batch = models.CharField(max_length=36)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="campaign_recipient_unique")
        ]
        indexes = [
            # The engine's question (is this member in the test group of an active multiplier
            # campaign?) and the member page's list, both by member.
            models.Index(fields=["member", "campaign"], name="recipient_member_idx"),
            models.Index(fields=["batch"], name="recipient_batch_idx"),
        ]

    def __str__(self):
        return f"{self.campaign_id}/{self.member_id} ({self.group})"

    @property
    def group_label(self):
        return self.Group(self.group).label

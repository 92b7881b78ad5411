"""What the lifecycle jobs record: runs and their locks, paid memberships, and the marks that make
each grant happen once (birthday per year, referral per friend, a notice per lot).

The marks are the jobs' idempotency keys: a unique constraint in the database decides that a
second run (or a re-run after a crash) finds the work done.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .naming import NamedPerLanguage


class JobRun(models.Model):
    """One run of a background job: when, as of when, how many rows it changed, what went wrong."""

    class Status(models.TextChoices):
        RUNNING = "running", pgettext_lazy("job", "Running")
        DONE = "done", pgettext_lazy("job", "Done")
        FAILED = "failed", pgettext_lazy("job", "Failed")
        SKIPPED = "skipped", pgettext_lazy("job", "Skipped: already running")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        BUTTON = "button", _("Run now button")
        COMMAND = "command", _("Command line")

    job = models.CharField(_("job"), max_length=64, db_index=True)
    as_of = models.DateTimeField(_("as of"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    trigger = models.CharField(
        _("started by"), max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    rows = models.PositiveBigIntegerField(_("rows changed"), default=0)
    batches = models.PositiveIntegerField(_("batches"), default=0)
    counts = models.JSONField(_("details"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        indexes = [models.Index(fields=["job", "-started_at"], name="jobrun_job_time_idx")]

    def __str__(self):
        return f"#{self.pk} · {self.started_at:%Y-%m-%d %H:%M} · {self.get_status_display()}"

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class JobLock(models.Model):
    """The row a run claims on databases without advisory locks (SQLite), one per job.

    A claim older than JOB_LOCK_STALE_SECONDS is taken over: its process died without releasing.
    """

    job = models.CharField(max_length=64, unique=True)
    run = models.ForeignKey(JobRun, on_delete=models.SET_NULL, null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.job


class BirthdayGrant(models.Model):
    """A member's birthday offer of one year: at most one (the constraint is the guarantee)."""

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    batch = models.CharField(max_length=36)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "year"], name="birthday_once_per_year")
        ]
        indexes = [models.Index(fields=["batch"], name="birthday_batch_idx")]

    def __str__(self):
        return f"birthday {self.year} of member {self.member_id}"


class LotNotice(models.Model):
    """That a member was told about a lot (its expiry is near, or it became available): once."""

    class Kind(models.TextChoices):
        EXPIRY = "expiry", _("Expiry reminder")
        AVAILABLE = "available", _("Points available")

    lot = models.ForeignKey("loyalty.PointsLot", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    batch = models.CharField(max_length=36)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lot", "kind"], name="lot_notice_once"),
        ]
        indexes = [models.Index(fields=["batch"], name="lot_notice_batch_idx")]

    def __str__(self):
        return f"{self.kind} notice of lot {self.lot_id}"


class ReferralReward(models.Model):
    """The reward for one referred friend's first purchase: once per friend."""

    friend = models.OneToOneField(
        "members.Member", on_delete=models.PROTECT, related_name="referral_reward"
    )
    referrer = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    purchase = models.ForeignKey("loyalty.Purchase", on_delete=models.PROTECT, related_name="+")
    points = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    # The referrer is credited in a transaction of its own (no transaction spans two members):
    # null until then; credit_referrers finds the rows still to do.
    referrer_credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(referrer_credited_at__isnull=True),
                name="referral_to_credit_idx",
            )
        ]

    def __str__(self):
        return f"referral of {self.friend_id} by {self.referrer_id}"


class MembershipPlan(NamedPerLanguage, models.Model):
    """A paid membership: a fee per period that grants a tier and perks while it lasts."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_ru = models.CharField(_("name in Russian"), max_length=100, blank=True)
    fee = models.DecimalField(_("fee per period"), max_digits=12, decimal_places=2)
    period_days = models.PositiveIntegerField(_("period in days"), default=30)
    tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier granted"),
        help_text=_("Members hold at least this tier while the membership lasts."),
    )
    perks = models.JSONField(_("perks"), default=list, blank=True)
    bonus_points = models.PositiveIntegerField(_("bonus points each paid period"), default=0)
    trial_days = models.PositiveIntegerField(_("free trial days"), default=0)
    is_active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        ordering = ["fee", "code"]
        verbose_name = _("membership plan")
        verbose_name_plural = _("membership plans")
        constraints = [
            models.CheckConstraint(condition=Q(fee__gte=Decimal("0")), name="plan_fee_gte_0"),
            models.CheckConstraint(condition=Q(period_days__gt=0), name="plan_period_gt_0"),
        ]

    def __str__(self):
        return self.display_name()


class Membership(models.Model):
    """A member's subscription to a plan. Cancelled ones run to the end of the paid period."""

    class Status(models.TextChoices):
        TRIAL = "trial", pgettext_lazy("membership", "Free trial")
        ACTIVE = "active", pgettext_lazy("membership", "Active")
        LAPSED = "lapsed", pgettext_lazy("membership", "Lapsed")

    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="memberships",
        verbose_name=_("member"),
    )
    plan = models.ForeignKey(
        MembershipPlan, on_delete=models.PROTECT, related_name="memberships", verbose_name=_("plan")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    auto_renew = models.BooleanField(_("renews automatically"), default=True)
    started_at = models.DateTimeField(_("joined"))
    period_start = models.DateTimeField(_("current period from"))
    period_end = models.DateTimeField(_("current period until"))
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status__in=["trial", "active"]),
                name="membership_one_live_per_member",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")), name="membership_period_order"
            ),
        ]
        indexes = [
            models.Index(
                fields=["period_end"],
                condition=Q(status__in=["trial", "active"]),
                name="membership_live_end_idx",
            )
        ]

    def __str__(self):
        return f"{self.plan} · {self.member_id} · {self.get_status_display()}"

    @property
    def is_live(self):
        return self.status in (self.Status.TRIAL, self.Status.ACTIVE)


class MembershipPeriod(models.Model):
    """Each period of a membership, with the fee charged for it (0 for a free trial).

    Unique per (membership, start), so a renewal run twice charges once.
    """

    class Kind(models.TextChoices):
        TRIAL = "trial", _("Free trial")
        JOIN = "join", _("Joined")
        RENEWAL = "renewal", _("Renewal")

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="periods")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    fee = models.DecimalField(max_digits=12, decimal_places=2)
    batch = models.CharField(max_length=36, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "starts_at"], name="membership_period_once"
            ),
        ]
        indexes = [
            models.Index(fields=["batch"], condition=~Q(batch=""), name="membership_period_batch")
        ]

    def __str__(self):
        return f"{self.kind} {self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"

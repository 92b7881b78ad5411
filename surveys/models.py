"""NPS and other surveys, their single-use links and answers, and complaint cases."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loyalty.models.naming import NamedPerLanguage


class Survey(NamedPerLanguage, models.Model):
    class Kind(models.TextChoices):
        NPS = "nps", _("NPS")
        CSAT = "csat", _("Satisfaction after a complaint")
        CHURN = "churn", _("Why members leave")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=200)
    name_ru = models.CharField(_("name in Russian"), max_length=200, blank=True)
    question_ru = models.CharField(_("question in Russian"), max_length=300)
    question_en = models.CharField(_("question in English"), max_length=300)
    follow_up_detractor_ru = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to detractors in Russian")
    )
    follow_up_detractor_en = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to detractors in English")
    )
    follow_up_passive_ru = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to passives in Russian")
    )
    follow_up_passive_en = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to passives in English")
    )
    follow_up_promoter_ru = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to promoters in Russian")
    )
    follow_up_promoter_en = models.CharField(
        max_length=300, blank=True, verbose_name=_("follow-up question to promoters in English")
    )
    delay_days = models.PositiveIntegerField(_("days after a purchase"), default=3)
    sampling_rate = models.DecimalField(
        _("share of purchases surveyed"), max_digits=4, decimal_places=3, default=1
    )
    cooldown_days = models.PositiveIntegerField(_("at most once per this many days"), default=90)
    reminder_after_days = models.PositiveIntegerField(_("remind after days"), default=2)
    link_valid_days = models.PositiveIntegerField(_("link valid for days"), default=14)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        constraints = [
            models.CheckConstraint(
                condition=Q(sampling_rate__gte=0) & Q(sampling_rate__lte=1),
                name="survey_sampling_0_1",
            )
        ]

    def __str__(self):
        return self.display_name()

    def question(self, language):
        return self.question_ru if language == "ru" else self.question_en

    def follow_up(self, group, language):
        return getattr(self, f"follow_up_{group}_{'ru' if language == 'ru' else 'en'}", "")


class SurveyInvitation(models.Model):
    """One member's single-use link to one survey. Only the token's hash is stored."""

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="invitations")
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="survey_invitations"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    purchase = models.ForeignKey(
        "loyalty.Purchase", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    complaint = models.ForeignKey(
        "surveys.Complaint", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    send = models.ForeignKey(
        "surveys.SurveySend",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations",
    )
    # The campaign whose end this survey asks about (surveys.jobs.campaign_surveys).
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="survey_invitations",
    )
    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(_("purchase channel"), max_length=16, blank=True)
    language = models.CharField(max_length=8, default="ru")
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("link expires"))
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["send", "member"],
                condition=Q(send__isnull=False),
                name="invitation_once_per_send",
            ),
            models.UniqueConstraint(
                fields=["campaign", "member"],
                condition=Q(campaign__isnull=False),
                name="invitation_once_per_campaign",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="invitation_member_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(answered_at__isnull=True, reminded_at__isnull=True),
                name="invitation_unreminded_idx",
            ),
        ]

    def __str__(self):
        return f"{self.survey} → {self.member_id}"


class NpsGroup(models.TextChoices):
    PROMOTER = "promoter", _("Promoters")
    PASSIVE = "passive", _("Passives")
    DETRACTOR = "detractor", _("Detractors")


def nps_group(score):
    if score is None:
        return ""
    if score >= 9:
        return NpsGroup.PROMOTER
    if score >= 7:
        return NpsGroup.PASSIVE
    return NpsGroup.DETRACTOR


class ChurnReason(models.TextChoices):
    PROGRAM = "program", _("Unhappy with the loyalty program")
    SERVICE = "service", _("Unhappy with the service")
    PRICES = "prices", _("Prices")
    COMPETITOR = "competitor", _("Moved to a competitor")
    MOVED = "moved", _("Moved away")
    OTHER = "other", _("Other")


class SurveyResponse(models.Model):
    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="responses", verbose_name=_("survey")
    )
    invitation = models.OneToOneField(
        SurveyInvitation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="response",
        verbose_name=_("invitation"),
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="survey_responses",
        verbose_name=_("member"),
    )
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    group = models.CharField(_("group"), max_length=16, choices=NpsGroup.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=16, choices=ChurnReason.choices, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    store = models.ForeignKey(
        "loyalty.Store",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
    )
    tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier"),
    )
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    source = models.CharField(_("answered through"), max_length=16, default="link")
    answered_at = models.DateTimeField(_("answered"), db_index=True)

    class Meta:
        ordering = ["-answered_at"]
        verbose_name = _("survey answer")
        verbose_name_plural = _("survey answers")
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__lte=10), name="response_score_0_10"
            )
        ]
        indexes = [models.Index(fields=["survey", "answered_at"], name="response_survey_time_idx")]

    def __str__(self):
        return f"{self.survey}: {self.score}"


class ComplaintCategory(NamedPerLanguage, models.Model):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_ru = models.CharField(_("name in Russian"), max_length=100, blank=True)
    sla_hours = models.PositiveIntegerField(_("hours to resolve"), default=48)

    class Meta:
        ordering = ["name"]
        verbose_name = _("complaint category")
        verbose_name_plural = _("complaint categories")

    def __str__(self):
        return self.display_name()


class Complaint(models.Model):
    class Status(models.TextChoices):
        NEW = "new", pgettext_lazy("complaint", "New")
        IN_PROGRESS = "in_progress", pgettext_lazy("complaint", "In progress")
        WAITING = "waiting", pgettext_lazy("complaint", "Waiting on customer")
        RESOLVED = "resolved", pgettext_lazy("complaint", "Resolved")
        CLOSED = "closed", pgettext_lazy("complaint", "Closed")

    class Source(models.TextChoices):
        SURVEY = "survey", _("Survey answer")
        PHONE = "phone", _("Phone call")
        VISIT = "visit", _("Store visit")
        API = "api", _("API")
        EMAIL = "email", _("E-mail")

    OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.WAITING)

    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="complaints",
        verbose_name=_("member"),
    )
    category = models.ForeignKey(
        ComplaintCategory,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("category"),
    )
    store = models.ForeignKey(
        "loyalty.Store",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NEW, db_index=True
    )
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_complaints",
        verbose_name=_("assignee"),
    )
    due_at = models.DateTimeField(_("due"))
    resolution = models.TextField(_("resolution"), blank=True)
    compensation_points = models.PositiveIntegerField(_("points given"), default=0)
    compensation_coupon = models.ForeignKey(
        "campaigns.Coupon",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coupon given"),
    )
    survey_response = models.OneToOneField(
        SurveyResponse,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="complaint",
        verbose_name=_("survey answer"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("opened"))
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        indexes = [
            models.Index(fields=["status", "due_at"], name="complaint_queue_idx"),
            models.Index(fields=["member", "-created_at"], name="complaint_member_idx"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.subject}"

    @property
    def is_open(self):
        return self.status in self.OPEN_STATUSES


class ComplaintNote(models.Model):
    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField(_("note"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return self.text[:50]


class SurveySend(models.Model):
    """An ad-hoc send of a survey to a segment of members, run in Celery with progress."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("send", "Waiting")
        RUNNING = "running", pgettext_lazy("send", "Sending")
        DONE = "done", pgettext_lazy("send", "Done")

    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="sends")
    filters = models.JSONField(_("segment"), default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(_("members"), default=0)
    done = models.PositiveIntegerField(_("invited"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True)
    # When a worker was sent the send; empty while the broker could not take it
    # (loyalty.web.taskqueue).
    enqueued_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.survey.code} send {self.pk}"

    @property
    def percent(self):
        return int(self.done * 100 / self.total) if self.total else (100 if self.done else 0)

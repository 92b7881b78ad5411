"""What the analytics dashboard reads: figures rebuilt by the ``refresh_analytics`` job.

Nothing here is edited by people but ``ProgramEconomics`` and ``KpiTarget`` (the ROI's inputs
and the marketer's targets, at the end). ``DailyFigures`` holds the day-by-day flows (receipts,
refunds, enrolments, points, NPS answers) per store; the other tables are snapshots as of the
last run (member activity per period, cohorts, RFM segments with predicted lifetime value), each
small enough for the dashboard to read in milliseconds. ``MemberStats`` is the job's working
table, one row per member, from which the snapshots are grouped.

Stores: a receipt, refund or points entry counts at the store where it happened (points not tied
to a receipt count at the member's home store); member figures (active, repeat, churn, cohorts,
segments) count each member once, at the store where they enrolled. A null store is "no store".
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

PERIODS = (30, 90, 365)


class Snapshot(models.Model):
    """The last completed refresh (a single row, id 1): the moment the snapshots describe."""

    as_of = models.DateTimeField(_("as of"))
    through = models.DateField(_("figures through"))
    full = models.BooleanField(default=False)
    first_day = models.DateField(_("first day refreshed"))
    point_value = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="RUB")
    # BG/NBD and Gamma-Gamma parameters, sample size and log-likelihoods (see analytics.clv).
    model = models.JSONField(default=dict)
    # The sources' highest ids when the daily figures were read (analytics.jobs._marks).
    marks = models.JSONField(default=dict)
    # The effect of joining as of the snapshot (analytics.effect and analytics.matching read the
    # receipts: seconds at millions, so the nightly job works them out and the pages read them).
    effects = models.JSONField(default=dict)
    # When the what-if replay's inputs (ReplayPurchase) were last rebuilt: its period ends then.
    replay_as_of = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"))

    class Meta:
        verbose_name = _("analytics snapshot")
        verbose_name_plural = _("analytics snapshots")

    def __str__(self):
        return f"analytics as of {self.as_of:%Y-%m-%d %H:%M}"


class DailyFigures(models.Model):
    """One store's day (the store's local date): additive flows only, so any period sums them."""

    day = models.DateField(_("day"))
    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    purchases = models.IntegerField(default=0)
    member_purchases = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    member_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    buying_members = models.IntegerField(default=0)
    refunds = models.IntegerField(default=0)
    refunded = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    member_refunded = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    new_members = models.IntegerField(default=0)
    # Points by ledger kind, as positive numbers except `points_adjusted` (signed).
    points_earned = models.BigIntegerField(default=0)
    points_bonus = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0)
    points_redeemed = models.BigIntegerField(default=0)
    points_returned = models.BigIntegerField(default=0)
    points_expired = models.BigIntegerField(default=0)
    points_adjusted = models.BigIntegerField(default=0)
    promoters = models.IntegerField(default=0)
    passives = models.IntegerField(default=0)
    detractors = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("daily figures")
        verbose_name_plural = _("daily figures")
        indexes = [models.Index(fields=["day", "store"], name="analytics_day_store_idx")]

    def __str__(self):
        return f"{self.day} {self.store_id}"


class MemberStats(models.Model):
    """The job's working table: one member's purchases as of the snapshot (rebuilt each run)."""

    member_id = models.BigIntegerField(primary_key=True)
    store_id = models.BigIntegerField(null=True)
    enrolled_at = models.DateTimeField()
    cohort = models.IntegerField()  # enrolment month as year × 12 + month − 1
    purchases = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    first_age = models.FloatField(null=True)  # days from the first purchase to as_of
    last_age = models.FloatField(null=True)  # days from the last purchase to as_of
    n30 = models.IntegerField(default=0)
    n90 = models.IntegerField(default=0)
    n365 = models.IntegerField(default=0)
    r30 = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    r90 = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    r365 = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    prev30 = models.IntegerField(default=0)  # purchases in the 30 days before the last 30
    prev90 = models.IntegerField(default=0)
    prev365 = models.IntegerField(default=0)
    before_enrolment = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    after_enrolment = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    points = models.BigIntegerField(default=0)  # balance as of the snapshot
    segment = models.CharField(max_length=16, default="")

    class Meta:
        indexes = [models.Index(fields=["store_id", "segment"], name="analytics_stats_seg_idx")]

    def __str__(self):
        return f"member {self.member_id}"


class StoreBuyer(models.Model):
    """A store a member has bought at: the segment criterion "bought at" reads these pairs
    (rebuilt with the snapshot from every receipt up to the rebuild) instead of a pass over the
    stores' receipts, adding the receipts since the snapshot's end."""

    pk = models.CompositePrimaryKey("store_id", "member_id")
    store_id = models.BigIntegerField()
    member_id = models.BigIntegerField()

    def __str__(self):
        return f"member {self.member_id} at store {self.store_id}"


class PeriodFigures(models.Model):
    """Members of one home store over the last ``days`` days before the snapshot."""

    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    days = models.IntegerField()
    members = models.IntegerField(default=0)
    buyers = models.IntegerField(default=0)
    purchases = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    repeat_buyers = models.IntegerField(default=0)
    previous_buyers = models.IntegerField(default=0)  # bought in the `days` days before
    retained = models.IntegerField(default=0)  # ... and again in the last `days` days
    # Members enrolled 90 to 730 days ago: their spend in the 90 days before and after enrolling.
    compared = models.IntegerField(default=0)
    compared_with_history = models.IntegerField(default=0)
    spend_before = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    spend_after = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # Points the members hold as of the snapshot (the same in each period's row).
    points_outstanding = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.store_id} {self.days}d"


class CohortSize(models.Model):
    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    cohort = models.IntegerField()
    members = models.IntegerField()

    def __str__(self):
        return f"{self.store_id} {self.cohort}"


class CohortFigures(models.Model):
    """Members of an enrolment month who bought in its ``months_since``-th month after."""

    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    cohort = models.IntegerField()
    months_since = models.IntegerField()
    buyers = models.IntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)

    def __str__(self):
        return f"{self.store_id} {self.cohort}+{self.months_since}"


class Segment(models.TextChoices):
    """RFM segments by recency (R) and frequency (F) scores from 1 to 5 (5 = best)."""

    CHAMPIONS = "champions", pgettext_lazy("rfm", "Champions")
    LOYAL = "loyal", pgettext_lazy("rfm", "Loyal")
    PROMISING = "promising", pgettext_lazy("rfm", "Promising")
    ATTENTION = "attention", pgettext_lazy("rfm", "Need attention")
    AT_RISK = "at_risk", pgettext_lazy("rfm", "At risk")
    HIBERNATING = "hibernating", pgettext_lazy("rfm", "Hibernating")
    LOST = "lost", pgettext_lazy("rfm", "Lost")
    NEVER = "never", pgettext_lazy("rfm", "Never bought")


class SegmentFigures(models.Model):
    """One RFM segment of a home store, with the predicted next 12 months (BG/NBD + Gamma-Gamma)."""

    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    segment = models.CharField(max_length=16, choices=Segment.choices)
    members = models.IntegerField(default=0)
    purchases = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    recency_days = models.FloatField(default=0)  # sum over members, for a mean
    expected_purchases = models.FloatField(default=0)  # sum over members, next 365 days
    expected_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    alive = models.FloatField(default=0)  # sum of P(alive)

    def __str__(self):
        return f"{self.store_id} {self.segment}"


class ProgramEconomics(models.Model):
    """What the merchant tells the ROI: the gross margin and what the program costs beyond the
    points and discounts the ledger and receipts know (a single row, id 1)."""

    gross_margin_pct = models.DecimalField(
        _("gross margin, %"), max_digits=5, decimal_places=2, default=Decimal("30.00"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )  # fmt: skip
    email_price = models.DecimalField(
        _("price of an e-mail"), max_digits=8, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(0)],
    )  # fmt: skip
    sms_price = models.DecimalField(
        _("price of an SMS"), max_digits=8, decimal_places=2, default=Decimal("3.50"),
        validators=[MinValueValidator(0)],
    )  # fmt: skip
    fixed_monthly_cost = models.DecimalField(
        _("fixed cost per month"), max_digits=12, decimal_places=2, default=Decimal("0.00"),
        validators=[MinValueValidator(0)],
    )  # fmt: skip

    class Meta:
        verbose_name = _("program economics")
        verbose_name_plural = _("program economics")

    def __str__(self):
        return str(self._meta.verbose_name)

    @classmethod
    def load(cls):
        return cls.objects.get_or_create(pk=1)[0]

    def message_price(self, channel):
        """What one message sent through ``channel`` costs (a channel without a price: 0)."""
        return {"email": self.email_price, "sms": self.sms_price}.get(channel, Decimal("0.00"))

    def margin_on(self, revenue):
        """The gross margin earned on ``revenue`` (unrounded)."""
        return revenue * self.gross_margin_pct / 100


class KpiTarget(models.Model):
    """A marketer's targets for one month; an empty target is not shown against its actual."""

    month = models.DateField(_("month"), unique=True)  # the first day of the month
    active_members = models.PositiveIntegerField(_("active members"), null=True, blank=True)
    repeat_rate_pct = models.DecimalField(
        _("repeat rate, %"), max_digits=5, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )  # fmt: skip
    nps = models.SmallIntegerField(
        _("NPS"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-100), MaxValueValidator(100)],
    )
    roi_pct = models.DecimalField(
        _("ROI, %"), max_digits=8, decimal_places=2, null=True, blank=True
    )

    class Meta:
        ordering = ["month"]
        verbose_name = _("KPI target")
        verbose_name_plural = _("KPI targets")

    def __str__(self):
        return f"{self.month:%Y-%m}"


class ReplayPurchase(models.Model):
    """The what-if replay's inputs (``analytics.whatif.inputs_sql``), rebuilt each night: every
    named purchase of the replay's reach with what no proposal changes, the member's qualifying
    value before it included. Kept in (member, time) order, the order the replay reads."""

    pk = models.CompositePrimaryKey("member_id", "occurred_at", "purchase_id")
    member_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    purchase_id = models.BigIntegerField()
    q = models.FloatField()
    qualified = models.FloatField()
    base = models.FloatField()
    kept = models.FloatField()
    small = models.BooleanField()
    red = models.FloatField()
    earned = models.FloatField()

    def __str__(self):
        return f"{self.member_id} {self.occurred_at:%Y-%m-%d %H:%M}"

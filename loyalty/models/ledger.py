"""Purchases, refunds and the points ledger (SPEC section 3).

Ledger entries are append-only (database triggers refuse UPDATE and DELETE); lots carry the
remaining points of each earning and are consumed soonest-expiry first.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Channel(models.TextChoices):
    STORE = "store", _("Store")
    ONLINE = "online", _("Online")
    APP = "app", _("App")


def channel_label(code):
    """A purchase channel in the page's language; an unknown code stays as it is."""
    return Channel(code).label if code in Channel.values else code


class Purchase(models.Model):
    """A receipt. Anonymous purchases (no member) are kept for analytics."""

    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.PROTECT, related_name="purchases", verbose_name=_("store")
    )
    external_id = models.CharField(_("receipt number"), max_length=64)
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("member"),
    )
    occurred_at = models.DateTimeField(_("time of purchase"))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default="store")
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    discount_amount = models.DecimalField(_("discount"), max_digits=12, decimal_places=2, default=0)
    redeemed_points = models.IntegerField(_("points spent"), default=0)
    redeemed_value = models.DecimalField(
        _("value of points spent"), max_digits=12, decimal_places=2, default=0
    )
    paid_amount = models.DecimalField(_("paid"), max_digits=12, decimal_places=2)
    earned_points = models.IntegerField(_("points earned"), default=0)
    coupon_code = models.CharField(_("coupon"), max_length=64, blank=True)
    tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier"),
    )
    # Refund progress: the cumulative rule of section 3 needs the totals so far.
    refunded_amount = models.DecimalField(_("refunded"), max_digits=12, decimal_places=2, default=0)
    reversed_points = models.IntegerField(default=0, verbose_name=_("points reversed"))
    returned_points = models.IntegerField(default=0, verbose_name=_("points returned"))
    # Paid amount net of refunds: what counts towards tiers.
    qualifying_amount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, verbose_name=_("qualifying amount")
    )
    is_historical = models.BooleanField(_("imported history"), default=False)
    # Idempotency: a replay with the same fingerprint gets `response` (the JSON text of the
    # first answer, kept as text so its key order survives) back unchanged.
    fingerprint = models.CharField(max_length=64, blank=True, verbose_name=_("request fingerprint"))
    response = models.TextField(blank=True, verbose_name=_("stored answer"))
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="purchase_store_receipt"),
            # A receipt of 0.00 happens in imported history (free goods, CDNOW's sample has 8),
            # never at the till.
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(amount=0, is_historical=True),
                name="purchase_amount_gt_0_or_free_history",
            ),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0) & Q(discount_amount__lte=F("amount")),
                name="purchase_discount_in_range",
            ),
            models.CheckConstraint(
                condition=Q(redeemed_points__gte=0), name="purchase_redeemed_gte_0"
            ),
            models.CheckConstraint(condition=Q(paid_amount__gte=0), name="purchase_paid_gte_0"),
            models.CheckConstraint(condition=Q(earned_points__gte=0), name="purchase_earned_gte_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="purchase_refunded_in_range",
            ),
            models.CheckConstraint(
                condition=Q(reversed_points__gte=0) & Q(reversed_points__lte=F("earned_points")),
                name="purchase_reversed_in_range",
            ),
            models.CheckConstraint(
                condition=Q(returned_points__gte=0) & Q(returned_points__lte=F("redeemed_points")),
                name="purchase_returned_in_range",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "occurred_at"], name="purchase_member_time_idx"),
            models.Index(fields=["store", "occurred_at"], name="purchase_store_time_idx"),
            models.Index(fields=["occurred_at"], name="purchase_time_idx"),
            # Segments: "bought at these stores" reads (store, member) pairs from the index
            # alone; spend net of refunds looks up the few refunded receipts of a member.
            models.Index(fields=["store", "member"], name="purchase_store_member_idx"),
            models.Index(
                fields=["member", "occurred_at"],
                condition=Q(refunded_amount__gt=0),
                name="purchase_refunded_idx",
            ),
        ]

    def __str__(self):
        return f"{self.external_id} ({self.amount})"

    @property
    def channel_label(self):
        """The channel in the reader's language; cheaper than get_channel_display() in lists."""
        return Channel(self.channel).label


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(_("SKU"), max_length=100)
    category = models.CharField(_("category"), max_length=100, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("line amount"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="line_price_gte_0"),
        ]

    def __str__(self):
        return f"{self.sku} × {self.quantity}"


class Refund(models.Model):
    store = models.ForeignKey("loyalty.Store", on_delete=models.PROTECT, related_name="+")
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    refund_id = models.CharField(_("refund id"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    reversed_points = models.IntegerField(_("points reversed"), default=0)
    returned_points = models.IntegerField(_("points returned"), default=0)
    # What the refund took off the purchase's qualifying amount: the tier job adds it back for
    # the moments before the refund, so a refund counts against the tier from when it was made.
    qualifying_amount = models.DecimalField(
        max_digits=12, decimal_places=2, default=0, verbose_name=_("qualifying amount")
    )
    fingerprint = models.CharField(max_length=64, blank=True, verbose_name=_("request fingerprint"))
    response = models.TextField(blank=True, verbose_name=_("stored answer"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("refunded by"),
    )
    # The refund's moment (the service's ``now``), which the tier job reads as an event.
    created_at = models.DateTimeField(_("refunded at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(fields=["store", "refund_id"], name="refund_store_refund_id"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(reversed_points__gte=0) & Q(returned_points__gte=0),
                name="refund_points_gte_0",
            ),
        ]

    def __str__(self):
        return f"{self.refund_id} ({self.amount})"


class EntryKind(models.TextChoices):
    EARN = "earn", pgettext_lazy("ledger", "Earned")
    BONUS = "bonus", pgettext_lazy("ledger", "Bonus")
    REDEEM = "redeem", pgettext_lazy("ledger", "Spent")
    EXPIRE = "expire", pgettext_lazy("ledger", "Expired")
    ADJUST = "adjust", pgettext_lazy("ledger", "Adjusted")
    REFUND_REVERSAL = "refund_reversal", pgettext_lazy("ledger", "Reversed by refund")
    REFUND_RETURN = "refund_return", pgettext_lazy("ledger", "Returned by refund")
    MERGE = "merge", pgettext_lazy("ledger", "Merged")


class Account(models.TextChoices):
    """The contra account of each entry: a double-entry view sums to zero by construction."""

    ISSUED = "issued", _("Issued")
    BONUS = "bonus", _("Bonuses")
    REDEEMED = "redeemed", _("Redeemed")
    EXPIRED = "expired", _("Expired")
    ADJUSTED = "adjusted", _("Adjusted")
    TRANSFER = "transfer", _("Transfers between members")


ACCOUNT_OF_KIND = {
    EntryKind.EARN: Account.ISSUED,
    EntryKind.BONUS: Account.BONUS,
    EntryKind.REDEEM: Account.REDEEMED,
    EntryKind.EXPIRE: Account.EXPIRED,
    EntryKind.ADJUST: Account.ADJUSTED,
    EntryKind.REFUND_REVERSAL: Account.ISSUED,
    EntryKind.REFUND_RETURN: Account.REDEEMED,
    EntryKind.MERGE: Account.TRANSFER,
}


class PointsLot(models.Model):
    """The points of one earning, consumed soonest-expiry first; remaining never negative."""

    # Indexed by lot_member_expiry_idx below (member first), not by a member-only index: with a
    # member-only index and statistics taken before a member's lots piled up, PostgreSQL read
    # all 50,000 lots of the busiest member through it to find the few expired ones (6 ms of a
    # purchase instead of 0.05 ms).
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="lots",
        db_index=False,
        verbose_name=_("member"),
    )
    points = models.IntegerField(verbose_name=_("points"))
    remaining = models.IntegerField(verbose_name=_("points left"))
    available_from = models.DateTimeField(verbose_name=_("available from"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lots",
        verbose_name=_("purchase"),
    )
    # The job run batch that granted this lot (birthday offers, membership bonuses), so the
    # batch's ledger entries and balance updates can find their lots in one statement.
    batch = models.CharField(
        max_length=36, blank=True, default="", db_default="", verbose_name=_("batch")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                name="lot_remaining_in_range",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("available_from")), name="lot_expires_after_available"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "expires_at"], name="lot_member_expiry_idx"),
            # Open lots in spending order (soonest expiry, then id): a spend reads the first
            # few in index order and stops, however many the member has (ledger.PG_SPEND).
            models.Index(
                fields=["member", "expires_at", "id"],
                condition=Q(remaining__gt=0),
                name="lot_member_open_idx",
            ),
            # Pending points of a member: the balance of a purchase by a member with many open
            # lots is the cached sum less these (points.balance_from_cache).
            models.Index(
                fields=["member", "available_from"],
                condition=Q(remaining__gt=0),
                name="lot_member_pending_idx",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="lot_open_expiry_idx"
            ),
            models.Index(fields=["batch"], condition=~Q(batch=""), name="lot_batch_idx"),
        ]

    def __str__(self):
        return _("lot %(id)s: %(remaining)s of %(points)s") % {
            "id": self.pk,
            "remaining": self.remaining,
            "points": self.points,
        }


class LedgerEntry(models.Model):
    """One change of a member's points. Never edited or deleted."""

    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="ledger", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=EntryKind.choices)
    account = models.CharField(_("contra account"), max_length=16, choices=Account.choices)
    points = models.IntegerField(_("points"))
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("purchase"),
    )
    refund = models.ForeignKey(
        Refund,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("refund"),
    )
    lot = models.ForeignKey(
        PointsLot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("points lot"),
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    job = models.CharField(_("job"), max_length=64, blank=True)
    batch = models.CharField(max_length=36, blank=True, verbose_name=_("batch"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="entry_points_not_0"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["earn", "bonus", "refund_return"], points__gt=0)
                    | Q(kind__in=["redeem", "expire", "refund_reversal"], points__lt=0)
                    | Q(kind__in=["adjust", "merge"])
                ),
                name="entry_sign_matches_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at", "-id"], name="entry_member_time_idx"),
            models.Index(fields=["batch"], condition=~Q(batch=""), name="entry_batch_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.points:+d}"

    @property
    def kind_label(self):
        """The kind in the reader's language; cheaper than get_kind_display() in long lists."""
        return EntryKind(self.kind).label


class LotAllocation(models.Model):
    """Which lots a purchase's spent points came from, so a refund can give them back."""

    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="allocations")
    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="allocations")
    points = models.IntegerField()
    returned = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purchase", "lot"], name="allocation_purchase_lot"),
            models.CheckConstraint(
                condition=Q(points__gt=0) & Q(returned__gte=0) & Q(returned__lte=F("points")),
                name="allocation_points_in_range",
            ),
        ]

    def __str__(self):
        return f"{self.points} from lot {self.lot_id}"


class ApiKey(models.Model):
    """A Bearer key for one store or partner. Only a hash is stored; the key is shown once."""

    store = models.ForeignKey(
        "loyalty.Store", on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("store")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, verbose_name=_("key hash"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["store__code", "-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self):
        return f"{self.store.code}: {self.name} ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None

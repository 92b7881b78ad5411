"""Coupons and their uses: what the till applies, so they belong to the engine's models.

Marketers and support create them (campaigns, complaint compensation), but the rules that judge
and redeem them (``loyalty.engine.coupons``) are the engine's, and the engine imports only its
own models. The tables, migrations and admin stay the campaigns app's (``app_label``): moving the
code here changed no schema.
"""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Coupon(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percent off")
        FIXED = "fixed", _("Fixed amount off")
        FREE_PRODUCT = "free_product", _("Free product")
        BOGO = "bogo", _("Buy one, get one free")

    code = models.CharField(_("code"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    value = models.DecimalField(
        _("value"),
        max_digits=12,
        decimal_places=2,
        default=0,
        help_text=_("Percent for a percent coupon, an amount for a fixed one."),
    )
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    min_amount = models.DecimalField(
        _("minimum purchase"), max_digits=12, decimal_places=2, default=0
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="coupons",
        verbose_name=_("only for member"),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    max_uses = models.PositiveIntegerField(_("uses allowed"), null=True, blank=True)
    uses = models.PositiveIntegerField(_("times used"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        app_label = "campaigns"  # its tables and migrations stay the campaigns app's
        ordering = ["-created_at"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")),
                name="coupon_uses_within_limit",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="coupon_value_gte_0"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100), name="coupon_percent_lte_100"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["free_product", "bogo"]) | ~Q(sku=""),
                name="coupon_product_has_sku",
            ),
        ]

    def __str__(self):
        return self.code


class CouponRedemption(models.Model):
    coupon = models.ForeignKey(
        Coupon, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("coupon")
    )
    purchase = models.OneToOneField(
        "loyalty.Purchase",
        on_delete=models.PROTECT,
        related_name="coupon_redemption",
        verbose_name=_("purchase"),
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("member"),
    )
    discount_amount = models.DecimalField(
        max_digits=12, decimal_places=2, verbose_name=_("discount")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("used at"))

    class Meta:
        app_label = "campaigns"
        verbose_name = _("coupon use")
        verbose_name_plural = _("coupon uses")
        indexes = [models.Index(fields=["coupon", "member"], name="coupon_use_member_idx")]

    def __str__(self):
        return _("%(code)s, purchase %(purchase)s") % {
            "code": self.coupon.code,
            "purchase": self.purchase_id,
        }

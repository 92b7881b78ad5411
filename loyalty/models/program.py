"""The program's rules: one settings row, tiers, and product rules."""

import time
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .naming import NamedPerLanguage

# The hot path (every purchase) reads the rules and tiers from a per-process copy instead of the
# database. A change saved here clears this process's copy at once; other processes see it
# within RULES_CACHE_SECONDS.
RULES_CACHE_SECONDS = 10
_rules_cache = {}


def clear_rules_cache():
    _rules_cache.clear()


def cached_rule(name, load):
    """A per-process copy of ``load()`` under ``name``, kept like the program rules (at most
    RULES_CACHE_SECONDS, emptied by ``clear_rules_cache``). Other apps' hot-path reads, such as
    the earn multipliers of running campaigns, use it."""
    return _cached(name, load)


def _cached(name, load):
    now = time.monotonic()
    entry = _rules_cache.get(name)
    if entry is None or entry[0] < now:
        entry = (now + RULES_CACHE_SECONDS, load())
        _rules_cache[name] = entry
    return entry[1]


class ProgramSettings(models.Model):
    """The merchant's one program (a single row, id 1). Defaults are SPEC's default program."""

    class Qualification(models.TextChoices):
        SPEND = "spend", _("Paid amount over the window")
        COUNT = "count", _("Number of purchases over the window")

    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    point_value = models.DecimalField(
        _("value of one point"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    max_redeem_share = models.DecimalField(
        _("largest share of a purchase payable with points"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.500"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    min_purchase_amount = models.DecimalField(
        _("minimum purchase to earn"), max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    pending_days = models.PositiveIntegerField(_("days before points become available"), default=0)
    expiry_days = models.PositiveIntegerField(
        _("days points stay available"), default=365, validators=[MinValueValidator(1)]
    )
    tier_qualification = models.CharField(
        _("tier qualification"),
        max_length=8,
        choices=Qualification.choices,
        default=Qualification.SPEND,
    )
    tier_window_days = models.PositiveIntegerField(_("tier window in days"), default=365)
    downgrade_grace_days = models.PositiveIntegerField(
        _("days below a tier before falling"), default=30
    )
    returned_points_expiry_days = models.PositiveIntegerField(
        _("days refunded points of an expired lot stay available"), default=30
    )
    birthday_points = models.PositiveIntegerField(_("birthday bonus points"), default=200)
    birthday_points_expiry_days = models.PositiveIntegerField(
        _("days birthday points stay available"), default=30
    )
    expiry_reminder_days = models.PositiveIntegerField(
        _("remind this many days before expiry"), default=14
    )
    referral_points = models.PositiveIntegerField(_("referral points for each member"), default=0)
    # Largest points adjustment (either sign) a role may make without an administrator.
    adjust_limit_store_manager = models.PositiveIntegerField(
        _("adjustment limit of a store manager, points"), default=500
    )
    adjust_limit_support = models.PositiveIntegerField(
        _("adjustment limit of support, points"), default=2000
    )
    adjust_limit_marketer = models.PositiveIntegerField(
        _("adjustment limit of a marketer, points"), default=0
    )

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="program_settings_single_row")
        ]

    def __str__(self):
        return str(_("Program settings"))

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        clear_rules_cache()

    @classmethod
    def load(cls):
        settings, _created = cls.objects.get_or_create(id=1)
        return settings

    @classmethod
    def cached(cls):
        """The rules as of at most RULES_CACHE_SECONDS ago (for the purchase hot path)."""
        return _cached("program", cls.load)


class Perk(models.TextChoices):
    """The non-monetary benefits a tier or a paid membership can carry (SPEC section 2)."""

    FREE_DELIVERY = "free_delivery", _("Free delivery")
    PRIORITY_SUPPORT = "priority_support", _("Priority support")
    EARLY_ACCESS = "early_access", _("Early access")


def perk_label(code):
    """A perk's name in the page's language; a code the program does not know stays as it is."""
    return Perk(code).label if code in Perk.values else code


class Tier(NamedPerLanguage, models.Model):
    """A level of the program: reached by rolling spend (or purchase count), with its benefits."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_ru = models.CharField(_("name in Russian"), max_length=100, blank=True)
    threshold = models.DecimalField(
        _("qualifying from"), max_digits=14, decimal_places=2, default=Decimal("0.00")
    )
    earn_rate = models.DecimalField(
        _("earn rate"),
        max_digits=5,
        decimal_places=4,
        help_text=_("Share of the paid amount earned as points, e.g. 0.0300 for 3%."),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    discount_percent = models.DecimalField(
        _("discount, %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    perks = models.JSONField(_("perks"), default=list, blank=True)

    class Meta:
        ordering = ["threshold"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.UniqueConstraint(fields=["threshold"], name="tier_threshold_unique"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_gte_0"),
            models.CheckConstraint(
                condition=Q(earn_rate__gte=0) & Q(earn_rate__lte=1), name="tier_earn_rate_0_1"
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="tier_discount_0_100",
            ),
        ]

    def __str__(self):
        return self.display_name()

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        clear_rules_cache()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        clear_rules_cache()
        return result

    @classmethod
    def ladder(cls):
        """All tiers, lowest threshold first, from the per-process copy."""
        return _cached("tiers", lambda: list(cls.objects.order_by("threshold")))


class ProductRule(models.Model):
    """A category or SKU excluded from earning, boosted (earn multiplier), or one that points may
    not pay for (tobacco, alcohol, gift cards: ``no_redeem``)."""

    class Kind(models.TextChoices):
        EXCLUDE = "exclude", _("Excluded from earning")
        BOOST = "boost", _("Boosted")
        NO_REDEEM = "no_redeem", _("Points may not pay for it")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    category = models.CharField(_("category"), max_length=100, blank=True)
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product rule")
        verbose_name_plural = _("product rules")
        constraints = [
            models.CheckConstraint(
                condition=~Q(category="") | ~Q(sku=""), name="product_rule_names_a_product"
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=0), name="product_rule_multiplier_gte_0"
            ),
        ]

    def __str__(self):
        target = self.sku or self.category
        return f"{self.get_kind_display()}: {target}"

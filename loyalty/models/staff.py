"""Stores, staff accounts and what each role may do."""

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(zone)s"), params={"zone": value})


class Store(models.Model):
    """A shop (or a partner business) where members earn and spend points."""

    class Kind(models.TextChoices):
        STORE = "store", _("Store")
        PARTNER = "partner", _("Partner")

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    city = models.CharField(_("city"), max_length=100, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Moscow", validators=[validate_time_zone]
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.STORE)
    earn_rate = models.DecimalField(
        _("partner earn rate"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_(
            "Share of the paid amount members earn at this partner, e.g. 0.0200 for 2%. "
            "Empty: the member's tier rate."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self):
        return f"{self.code} · {self.name}"

    @property
    def tzinfo(self):
        return zoneinfo.ZoneInfo(self.time_zone)


class User(AbstractUser):
    """A member of the merchant's staff. Roles are Django groups (see loyalty.roles)."""

    stores = models.ManyToManyField(
        Store,
        blank=True,
        related_name="staff",
        verbose_name=_("stores"),
        help_text=_("Stores a store manager manages; other roles see every store."),
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")


class Capability(models.Model):
    """Holds the permissions roles are made of; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_members", _("Find members and see their story")),
            ("enrol_member", _("Enrol members")),
            ("edit_member", _("Edit, block and merge members")),
            ("handle_personal_data", _("Export and erase a member's personal data")),
            ("record_purchase", _("Record and refund purchases")),
            ("adjust_points", _("Adjust members' points")),
            ("adjust_points_unlimited", _("Adjust points above the role limit")),
            ("view_audit", _("See the audit log")),
            ("handle_complaints", _("Work the complaints queue")),
            ("manage_campaigns", _("Build segments and campaigns")),
            ("manage_surveys", _("Run surveys")),
            ("view_analytics", _("See analytics")),
            ("manage_program", _("Change program rules, tiers and stores")),
            ("manage_staff", _("Manage staff accounts")),
            ("manage_api_keys", _("Create and revoke API keys")),
            ("run_jobs", _("See and run background jobs")),
            ("all_stores", _("See every store")),
        ]

    def __str__(self):
        return "capability"


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive (read by /healthz)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return self.hostname

    @classmethod
    def record(cls, hostname):
        cls.objects.update_or_create(hostname=hostname, defaults={"seen_at": timezone.now()})

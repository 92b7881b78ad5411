"""Webhooks (SPEC 8.2): an integrator's subscription of a URL to events, and one delivery row
per (subscription, event), written in the transaction of the change (loyalty/engine/
webhook_events.py) and sent later by a worker (webhooks/services.py)."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loyalty.models.program import clear_rules_cache


class Event(models.TextChoices):
    """The events an integrator may subscribe to (the ``type`` of a delivery's body)."""

    MEMBER_ENROLLED = "member.enrolled", _("Member enrolled")
    PURCHASE_RECORDED = "purchase.recorded", _("Purchase recorded")
    PURCHASE_REFUNDED = "purchase.refunded", _("Purchase refunded")
    TIER_CHANGED = "tier.changed", _("Tier changed")
    POINTS_EXPIRING = "points.expiring", _("Points expiring soon")
    COUPON_ISSUED = "coupon.issued", _("Coupon issued")
    COMPLAINT_OPENED = "complaint.opened", _("Complaint opened")


def new_secret():
    """A signing secret: 256 random bits, as text."""
    return "whsec_" + secrets.token_hex(32)


class Subscription(models.Model):
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=100, default=new_secret)
    description = models.CharField(_("description"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["id"]

    def __str__(self):
        return self.url

    # The till reads which events anyone wants from a per-process copy (webhook_events.wanted):
    # a change here empties this process's copy; other processes see it within
    # RULES_CACHE_SECONDS.
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        clear_rules_cache()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        clear_rules_cache()
        return result

    def event_labels(self):
        labels = dict(Event.choices)
        return [labels.get(event, event) for event in self.events]


class Delivery(models.Model):
    """One event for one subscription: sent until the receiver answers 2xx, or given up."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery", "Pending")
        DELIVERED = "delivered", pgettext_lazy("webhook delivery", "Delivered")
        FAILED = "failed", pgettext_lazy("webhook delivery", "Failed")

    subscription = models.ForeignKey(
        Subscription, verbose_name=_("subscription"), on_delete=models.CASCADE
    )
    event_type = models.CharField(_("event"), max_length=40, choices=Event.choices)
    # Names the event (``purchase.recorded:3:H-1``): the body's ``id``; writing it again for the
    # same subscription does nothing (unique below).
    event_key = models.CharField(_("event id"), max_length=200)
    payload = models.JSONField(_("data"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last response"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_key"], name="webhook_delivery_once_per_event"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "delivered", "failed"]),
                name="webhook_delivery_status_known",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self):
        return f"{self.event_key} → {self.subscription_id}"

"""The audit log: who changed what, when, why, before and after. Append-only."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    action = models.CharField(_("action"), max_length=64)
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
        verbose_name=_("member"),
    )
    object_type = models.CharField(_("object"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [models.Index(fields=["member", "-created_at"], name="audit_member_time_idx")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} · #{self.pk}"


def audit_entry(*, actor, action, member=None, obj=None, reason="", before=None, after=None):
    """One audit row, not yet saved: ``audit`` saves it; a batch bulk-creates a list of them."""
    return AuditLog(
        actor=actor,
        action=action,
        member=member,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        reason=reason,
        before=before,
        after=after,
    )


def audit(**fields):
    """Write one audit row (inside the caller's transaction); ``fields`` as ``audit_entry``."""
    entry = audit_entry(**fields)
    entry.save(force_insert=True)
    return entry

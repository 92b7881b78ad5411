"""The audit log in words: each action by a translated name, each change as "Field: old → new".

The one home for showing audit rows; the audit log page and the member page's staff-changes
column both render ``loyalty/audit_table.html``, which uses these tags. An audit row keeps codes
(``member.enrol``, ``{"status": "blocked"}``) so that it stays true when labels change; the labels
come from the model the row names (field verbose names, choice labels) and from the tables below.
"""

from decimal import Decimal, InvalidOperation

from django import template
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.template.defaultfilters import yesno
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loyalty.models import channel_label, perk_label
from loyalty.roles import ROLE_LABELS

register = template.Library()

ACTION_LABELS = {
    "apikey.create": pgettext_lazy("audit action", "API key created"),
    "apikey.revoke": pgettext_lazy("audit action", "API key revoked"),
    "coupon.issue": pgettext_lazy("audit action", "Coupons issued"),
    "webhook.create": pgettext_lazy("audit action", "Webhook created"),
    "webhook.update": pgettext_lazy("audit action", "Webhook changed"),
    "webhook.delete": pgettext_lazy("audit action", "Webhook deleted"),
    "webhook.rotate_secret": pgettext_lazy("audit action", "Webhook secret replaced"),
    "webhook.resend": pgettext_lazy("audit action", "Webhook delivery sent again"),
    "campaign.cancel": pgettext_lazy("audit action", "Campaign cancelled"),
    "campaign.create": pgettext_lazy("audit action", "Campaign created"),
    "campaign.edit": pgettext_lazy("audit action", "Campaign changed"),
    "campaign.schedule": pgettext_lazy("audit action", "Campaign scheduled"),
    "campaign.send": pgettext_lazy("audit action", "Campaign sending started"),
    "campaign.send_now": pgettext_lazy("audit action", "Campaign sent now"),
    "complaint.compensate": pgettext_lazy("audit action", "Compensation for a complaint"),
    "complaint.open": pgettext_lazy("audit action", "Complaint opened"),
    "complaint.resolve": pgettext_lazy("audit action", "Complaint resolved"),
    "complaint.status": pgettext_lazy("audit action", "Complaint status changed"),
    "complaint.take": pgettext_lazy("audit action", "Complaint taken"),
    "member.block": pgettext_lazy("audit action", "Card blocked"),
    "member.edit": pgettext_lazy("audit action", "Member data changed"),
    "member.enrol": pgettext_lazy("audit action", "Member enrolled"),
    "member.erase": pgettext_lazy("audit action", "Personal data erased"),
    "member.export": pgettext_lazy("audit action", "Personal data downloaded"),
    "member.send_sign_in_link": pgettext_lazy("audit action", "Link to the member's own page sent"),
    "member.merge": pgettext_lazy("audit action", "Duplicate member merged"),
    "member.unblock": pgettext_lazy("audit action", "Card unblocked"),
    "membership.cancel": pgettext_lazy("audit action", "Paid membership cancelled"),
    "membership.join": pgettext_lazy("audit action", "Paid membership joined"),
    "membership.lapse": pgettext_lazy("audit action", "Paid membership lapsed"),
    "membership.renew": pgettext_lazy("audit action", "Paid membership renewed"),
    "points.adjust": pgettext_lazy("audit action", "Points adjusted"),
    "membership_plan.create": pgettext_lazy("audit action", "Membership plan created"),
    "membership_plan.edit": pgettext_lazy("audit action", "Membership plan changed"),
    "product_rule.create": pgettext_lazy("audit action", "Product rule created"),
    "product_rule.edit": pgettext_lazy("audit action", "Product rule changed"),
    "program.create": pgettext_lazy("audit action", "Program rules created"),
    "program.edit": pgettext_lazy("audit action", "Program rules changed"),
    "segment.create": pgettext_lazy("audit action", "Segment created"),
    "segment.edit": pgettext_lazy("audit action", "Segment changed"),
    "staff.create": pgettext_lazy("audit action", "Staff account created"),
    "staff.edit": pgettext_lazy("audit action", "Staff account changed"),
    "store.create": pgettext_lazy("audit action", "Store created"),
    "store.edit": pgettext_lazy("audit action", "Store changed"),
    "survey.create": pgettext_lazy("audit action", "Survey created"),
    "survey.edit": pgettext_lazy("audit action", "Survey changed"),
    "survey.send": pgettext_lazy("audit action", "Survey sent"),
    "tier.create": pgettext_lazy("audit action", "Tier created"),
    "tier.edit": pgettext_lazy("audit action", "Tier changed"),
}

# Keys written by services that are not a field of the audited object (or not with that name).
FIELD_LABELS = {
    "activity_days": _("Purchases and spend counted over the last"),
    "api_key": _("API key"),
    "birthday_month": _("Birthday month"),
    "bought_at_stores": _("Bought at store"),
    "card_number": _("card number"),
    "cards": pgettext_lazy("audit field", "cards"),
    "category": _("category"),
    "chunks": pgettext_lazy("audit field", "parts"),
    "consent": _("marketing consent"),
    "coupon": pgettext_lazy("audit field", "coupon"),
    "debt": _("points debt"),
    "definition": pgettext_lazy("audit field", "conditions"),
    "done": pgettext_lazy("audit field", "done"),
    "enrolled_from": _("Enrolled from"),
    "enrolled_stores": _("Enrolled in store"),
    "enrolled_to": _("Enrolled until"),
    "has_email": pgettext_lazy("audit field", "has an e-mail"),
    "has_phone": pgettext_lazy("audit field", "has a phone"),
    "lapsed_days": _("Lapsed: last purchase more than this many days ago"),
    "members": pgettext_lazy("audit field", "members"),
    "messages_cancelled": pgettext_lazy("audit field", "waiting messages cancelled"),
    "name": _("name"),
    "password_changed": pgettext_lazy("audit field", "password changed"),
    "points": pgettext_lazy("audit field", "points"),
    "points_balance": _("points balance"),
    "points_debt": _("points debt"),
    "purchases_max": _("Purchases, at most"),
    "purchases_min": _("Purchases, at least"),
    "role": _("Role"),
    "source": _("source"),
    "spend_max": pgettext_lazy("audit field", "spend, at most"),
    "spend_min": pgettext_lazy("audit field", "spend, at least"),
    "status": _("status"),
    "store": _("store"),
    "stores": _("Stores managed"),
    "survey": _("survey"),
    "target": pgettext_lazy("audit field", "merged into"),
    "tier": _("tier"),
    "tiers": _("tiers"),
    "total": pgettext_lazy("audit field", "total"),
}

# Keys whose value names a row the merchant names, by its code (complaints, survey sends) or its
# id (segment definitions): shown by its name in the page's language (one query per table per
# page, whatever the number of rows).
NAMED_ROWS = {
    "bought_at_stores": "loyalty.Store",
    "category": "surveys.ComplaintCategory",
    "enrolled_stores": "loyalty.Store",
    "survey": "surveys.Survey",
    "tier": "loyalty.Tier",
    "tiers": "loyalty.Tier",
}
# Segment criteria kept as "yes" / "no".
YES_NO_KEYS = {"consent", "has_email", "has_phone"}


@register.filter
def audit_action(code):
    """An audit action code (``member.enrol``) as a translated name; an unknown code as is."""
    return ACTION_LABELS.get(code, code)


def _model(entry):
    if not entry.object_type:
        return None
    try:
        return apps.get_model(entry.object_type)
    except (LookupError, ValueError):
        return None


def _field(model, key):
    """The audited model's own field of that name (not a reverse relation), if any."""
    if model is None:
        return None
    try:
        field = model._meta.get_field(key)
    except FieldDoesNotExist:
        return None
    return None if field.auto_created and not field.concrete else field


def _names(context, model_label):
    cache = context.render_context.setdefault("audit_named_rows", {})
    if model_label not in cache:
        names = {}
        for row in apps.get_model(model_label).objects.all():
            name = row.display_name() if hasattr(row, "display_name") else row.code
            names[row.code] = names[row.pk] = name
        cache[model_label] = names
    return cache[model_label]


def _value(context, key, field, value):
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return yesno(value)
    if isinstance(value, list):
        return ", ".join(_value(context, key, field, item) for item in value) or "—"
    if isinstance(value, dict):
        parts = [
            f"{_label(None, name)}: {_value(context, name, None, item)}"
            for name, item in value.items()
            if item not in (None, "", [])
        ]
        return "; ".join(parts) or "—"
    if key == "perks":
        return str(perk_label(value))
    if key == "role":
        return str(ROLE_LABELS.get(value, value))
    if key == "channel":
        return str(channel_label(value))
    if key in NAMED_ROWS and isinstance(value, str | int):
        return str(_names(context, NAMED_ROWS[key]).get(value, value))
    if key in YES_NO_KEYS and value in ("yes", "no"):
        return yesno(value == "yes")
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(field, models.DecimalField):
        try:
            return formats.number_format(Decimal(str(value)), use_l10n=True)
        except InvalidOperation:
            return str(value)
    if isinstance(value, str) and "T" in value:
        moment = parse_datetime(value)
        if moment is not None:
            if timezone.is_aware(moment):
                moment = timezone.localtime(moment)
            return formats.date_format(moment, "SHORT_DATETIME_FORMAT")
    return str(value)


def _label(field, key):
    # A field declared without a verbose name has its bare name as one: the table's label wins.
    if field is not None and (key not in FIELD_LABELS or field.verbose_name != key):
        return capfirst(field.verbose_name)
    return capfirst(FIELD_LABELS.get(key, key))


@register.simple_tag(takes_context=True)
def audit_changes(context, entry):
    """The entry's changes, one per field: label, old value (or None when there was none), new.

    A field the entry only had before (and not after) is shown going to "—"; a field recorded
    with the same value before and after (a balance the action left alone) is left out.
    """
    model = _model(entry)
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    changes = []
    for key in list(after) + [key for key in before if key not in after]:
        if key in before and key in after and before[key] == after[key]:
            continue
        field = _field(model, key)
        changes.append(
            {
                "label": _label(field, key),
                "before": _value(context, key, field, before[key]) if key in before else None,
                "after": _value(context, key, field, after.get(key)),
            }
        )
    return changes

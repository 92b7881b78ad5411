from decimal import InvalidOperation

from django import template
from django.conf import settings
from django.utils import formats, translation

from loyalty.engine.money import money as money_value
from loyalty.models import channel_label, perk_label
from loyalty.roles import ROLE_LABELS

register = template.Library()

SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€"}


@register.filter
def money(value, currency=None):
    """An amount with two decimals, grouped for the locale: 1 000,00 ₽ or ₽1,000.00."""
    if value is None or value == "":
        return ""
    try:
        amount = money_value(value)
    except (InvalidOperation, TypeError, ValueError):
        return value
    text = formats.number_format(amount, decimal_pos=2, use_l10n=True, force_grouping=True)
    symbol = SYMBOLS.get(currency or settings.CURRENCY, currency or settings.CURRENCY)
    if translation.get_language() == "ru":
        return f"{text}\u00a0{symbol}"
    return f"{symbol}{text}"


@register.filter
def tier_label(tier):
    if tier is None:
        return ""
    return tier.display_name(translation.get_language())


@register.filter
def perk_labels(perks):
    """A tier's or plan's perks by name in the page's language, comma-separated."""
    return ", ".join(str(perk_label(code)) for code in perks or [])


@register.filter
def role_label(name):
    """A staff role (a group's name) in the page's language; other groups keep their name."""
    return ROLE_LABELS.get(name, name)


register.filter("channel_label", channel_label)


@register.simple_tag
def tier_name(tier):
    return tier_label(tier)

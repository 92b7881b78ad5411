from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings
from django.utils import formats, translation

register = template.Library()

SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€"}


@register.filter
def money(value, currency=None):
    """An amount with two decimals, grouped for the locale: 1 000,00 ₽ or ₽1,000.00."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
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


@register.simple_tag
def tier_name(tier):
    return tier_label(tier)

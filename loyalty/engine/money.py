"""Money rounding, the one home for it: amounts are Decimals rounded half-up to the kopeck.

A value coming back from the database as a float (SQLite sums decimals as floats, numpy sums
are floats) is read through ``Decimal(str(value))``: its shortest decimal form, so 0.1 + 0.2
is 0.30, never a binary expansion and never float arithmetic.
"""

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

# The same rounding done by the database, for sums kept in SQL (tiers' spend).
MONEY_SQL = "ROUND({}, 2)"


def _decimal(value):
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def round_to(value, places, *, rounding=ROUND_HALF_UP):
    """``value`` rounded to ``places`` decimals (0 for a whole number), half-up by default."""
    return _decimal(value).quantize(Decimal(1).scaleb(-places), rounding=rounding)


def money(value, *, rounding=ROUND_HALF_UP):
    """An amount rounded to the kopeck, half-up (``rounding`` only to keep an old figure)."""
    return round_to(value, 2, rounding=rounding)


def money_str(value):
    """An amount as the API writes it: ``"12.30"``."""
    return str(money(value))


def from_cents(cents):
    """Whole kopecks as an amount: 1234 → Decimal("12.34")."""
    return Decimal(int(cents)).scaleb(-2)


def roi_pct(margin, cost):
    """Return on a cost, in percent to one place: (margin − cost) ÷ cost × 100 (SPEC 8.1);
    None without a margin or without a cost."""
    if margin is None or not cost:
        return None
    return round_to((margin - cost) / cost * 100, 1)

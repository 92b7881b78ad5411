"""Earn multipliers at the till: the engine multiplies the points, an app above it says by how much.

The engine knows nothing of campaigns. An app that runs multiplier offers registers, when Django
starts (its AppConfig.ready), a function ``(member_id, store_id, when) -> Decimal`` giving one
member's factor for a purchase at ``when``; the factors of every registered source multiply. With
none registered every factor is 1.
"""

from decimal import Decimal

_sources = []


def register(source):
    """Add a source of multipliers (once, however often Django's ready() runs)."""
    if source not in _sources:
        _sources.append(source)


def factor(member_id, store_id, when):
    """The product of every source's factor for this member's purchase at this store."""
    result = Decimal(1)
    for source in _sources:
        result *= source(member_id, store_id, when)
    return result

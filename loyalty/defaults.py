"""The default program of SPEC section 2, installed by a migration and by seed_demo."""

from decimal import Decimal

DEFAULT_TIERS = [
    # code, name, Russian name, qualifying from, earn rate, perks
    ("bronze", "Bronze", "Бронзовый", Decimal("0"), Decimal("0.0300"), []),
    ("silver", "Silver", "Серебряный", Decimal("15000"), Decimal("0.0500"), []),
    ("gold", "Gold", "Золотой", Decimal("50000"), Decimal("0.0700"), ["free_delivery"]),
]


def install_default_program(program_model, tier_model):
    """Create the program settings row and the three tiers unless tiers already exist.

    Takes the model classes so that a data migration can pass its historical models.
    """
    program_model.objects.get_or_create(id=1)
    if tier_model.objects.exists():
        return
    for code, name, name_ru, threshold, rate, perks in DEFAULT_TIERS:
        tier_model.objects.create(
            code=code,
            name=name,
            name_ru=name_ru,
            threshold=threshold,
            earn_rate=rate,
            perks=perks,
        )

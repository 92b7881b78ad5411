"""Card numbers and referral codes: the one home of their format and of how new ones are drawn.

A card number is 13 ASCII digits: "2" (in-store numbering), 11 digits and a Luhn check digit,
checked at the till. A referral code is 8 characters of ``REFERRAL_ALPHABET``.

Stdlib only, on purpose: any layer may import it (models included) without an import cycle.
Whether a drawn number is still free is the caller's question (``members.services`` asks the
database); datagen passes its own deterministic digits through ``card_from_body`` and
``referral_from_int``.
"""

import secrets

CARD_LENGTH = 13
CARD_PREFIX = "2"  # in-store numbering
PATTERN = rf"^[0-9]{{{CARD_LENGTH}}}$"  # what the API's schema says (the check digit it cannot)
DIGITS = "0123456789"

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
REFERRAL_LENGTH = 8


def luhn_check_digit(body):
    """The Luhn check digit of a string of digits (the card without its last digit)."""
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid(card_number):
    """13 ASCII digits whose last one is the Luhn check digit of the others."""
    return (
        isinstance(card_number, str)
        and card_number.isascii()
        and card_number.isdigit()
        and len(card_number) == CARD_LENGTH
        and luhn_check_digit(card_number[:-1]) == card_number[-1]
    )


def card_from_body(body):
    """The card number of a 12-digit body: the body and its check digit."""
    return body + luhn_check_digit(body)


def random_card(choice=secrets.choice):
    """A new card number: "2", 11 digits drawn with ``choice``, the check digit."""
    body = CARD_PREFIX + "".join(choice(DIGITS) for _ in range(CARD_LENGTH - 2))
    return card_from_body(body)


def random_referral(choice=secrets.choice):
    """A new referral code: 8 characters of the alphabet drawn with ``choice``."""
    return "".join(choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


def referral_from_int(value):
    """The referral code spelling ``value`` (taken modulo 32**8) in the alphabet, lowest digit
    first: a deterministic code for generated data."""
    base = len(REFERRAL_ALPHABET)
    chars = []
    for _position in range(REFERRAL_LENGTH):
        value, digit = divmod(value, base)
        chars.append(REFERRAL_ALPHABET[digit])
    return "".join(chars)

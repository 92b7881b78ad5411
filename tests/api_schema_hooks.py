"""Schemathesis hooks: the API's rules that an OpenAPI 3.0 schema cannot spell.

Each rule is documented in the schema's descriptions, and the API refuses a request breaking it
with 400 naming the field; these hooks only make schemathesis's *valid* (positive) requests obey
them, so that "a schema-valid request is accepted" can be checked strictly. Negative cases are
left exactly as generated. Used by tests/engine/test_api_schema.py, and by the CLI with
``SCHEMATHESIS_HOOKS=tests.api_schema_hooks`` (docs/api.md).
"""

import os
import zlib
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import django
import schemathesis
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

if not apps.ready:  # the schemathesis CLI loads these hooks outside pytest-django
    # The suite's settings: they need no secret from the shell, and the hooks touch no database.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()

# The rules themselves, not copies: the hooks obey what the API enforces.
from loyalty.engine.purchases import Line, lines_total  # noqa: E402
from members.models import luhn_check_digit  # noqa: E402

MAX_AMOUNT = Decimal("9999999999.99")


def _valid_card(value):
    """The drawn 13 digits with their check digit put right (a real member's card or a 404)."""
    if isinstance(value, str) and len(value) == 13 and value.isascii() and value.isdigit():
        return value[:-1] + luhn_check_digit(value[:-1])
    return value


def _valid_phone(value):
    """A real Russian mobile number, a different one for each drawn value."""
    return f"+7912{zlib.crc32(str(value).encode()) % 10_000_000:07d}"


def _in_range_date(value, low, high):
    try:
        parsed = date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    return parsed is not None and low <= parsed <= high


def _line_total(lines):
    """What the drawn lines come to, by the purchase service's own sum (None: not lines)."""
    try:
        return lines_total(
            Line(
                sku=line["sku"],
                quantity=Decimal(line["quantity"]),
                unit_price=Decimal(line["unit_price"]),
            )
            for line in lines
        )
    except (InvalidOperation, KeyError, TypeError):
        return None


def _fix_body(body):
    if "card_number" in body:
        body["card_number"] = _valid_card(body["card_number"])
    if "phone" in body:  # POST /members: phonenumbers' validity has no pattern
        body["phone"] = _valid_phone(body["phone"])
    if body.get("email"):  # Django's e-mail validator is stricter than the "email" format
        try:
            validate_email(body["email"])
        except ValidationError:
            body["email"] = f"m{zlib.crc32(str(body['email']).encode())}@example.com"
    if "category" in body:  # POST /complaints: a category of the merchant's list
        body["category"] = "other"
    if "referral_code" in body:  # a referral code must be a member's (or empty)
        body["referral_code"] = ""
    if body.get("birth_date") is not None and not _in_range_date(
        body["birth_date"], date(1900, 1, 1), date.today()
    ):
        body["birth_date"] = "1990-05-17"  # a birth date is between 1900 and today
    if body.get("occurred_at") is not None and not _in_range_date(
        body["occurred_at"], date(2000, 1, 2), date.today() - timedelta(days=1)
    ):
        body["occurred_at"] = None  # a purchase happens after 2000 and not in the future
    if body.get("redeem_points") and not body.get("card_number"):
        body["redeem_points"] = 0  # only a member's purchase spends points
    lines = body.get("lines")
    if lines:  # the lines add up to the amount, to the kopeck
        total = _line_total(lines)
        if total is not None and Decimal("0.01") <= total <= MAX_AMOUNT:
            body["amount"] = str(total)
        else:
            del body["lines"]


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.body, dict):
        _fix_body(case.body)
    if case.operation.method.upper() == "GET" and case.operation.path == "/api/v1/members":
        query = case.query if isinstance(case.query, dict) else {}
        phone = query.get("phone")
        if isinstance(phone, str) and phone.strip():
            query["phone"] = _valid_phone(phone)
        elif not (isinstance(query.get("email"), str) and query["email"].strip()):
            query["phone"] = _valid_phone(query)  # give phone or e-mail: one of them is needed
        case.query = query
    return case

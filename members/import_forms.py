"""The rows of a CSV import (SPEC section 5): one form per kind validates a row, and
``check_rows`` checks the file as a whole (a value twice in the file, or already in the database).

A row form's ``cleaned_data`` is what the writer in ``members.imports`` needs. The messages are
the ones shown in the error report, column by column.
"""

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.money import money
from loyalty.models import Channel, Purchase, Store
from members.models import Member
from members.services import normalise_phone

LOOKUP_CHUNK = 5000


def parse_moment(value):
    """An ISO 8601 time, or a date (noon); naive times are in the project's time zone."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError
        moment = datetime.combine(day, time(12, 0))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class TextField(forms.CharField):
    """A CharField whose only message is ``message`` (the cells are already stripped)."""

    def __init__(self, message=None, **kwargs):
        super().__init__(required=False, strip=False, **kwargs)
        if message is not None:
            self.error_messages["max_length"] = message


class CellField(forms.Field):
    """A cell read by ``parse`` (a missing cell is ""); a ValueError is shown as ``message``."""

    def __init__(self, parse, message, **kwargs):
        super().__init__(required=False, **kwargs)
        self.parse, self.message = parse, message

    def to_python(self, value):
        try:
            return self.parse(value or "")
        except ValueError:
            raise ValidationError(self.message) from None


def parse_bool(value):
    lowered = value.lower()
    if lowered in ("true", "1", "yes", ""):
        return lowered != ""
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError


def parse_optional_moment(value):
    return parse_moment(value) if value else None


def parse_phone(value):
    try:
        return normalise_phone(value)
    except LoyaltyError:
        raise ValueError from None


PHONE_MESSAGE = _("Not a valid phone number.")


class SharedFields(dict):
    """A form's fields that its instances share rather than deep-copy: a row form's fields are
    only read, never rendered or changed, and copying them took 60% of checking a file."""

    def __deepcopy__(self, memo):
        return self


class RowFormMetaclass(forms.forms.DeclarativeFieldsMetaclass):
    def __new__(mcs, name, bases, attrs):
        new_class = super().__new__(mcs, name, bases, attrs)
        new_class.base_fields = SharedFields(new_class.base_fields)
        return new_class


class RowForm(forms.Form, metaclass=RowFormMetaclass):
    """One row of a file. ``file_context`` is read once per file and given to every row."""

    # (column, message with %(line)s): a key that may appear once in the file (unique_keys)
    same_as = {}

    def __init__(self, data, **context):
        super().__init__(data)
        self.context = context

    def _clean_fields(self):
        # A row is a dict of cells, not a request: each field cleans its cell directly, without
        # the widgets and bound fields a rendered form needs (a third of the time per row).
        for name, cell_field in self.fields.items():
            try:
                self.cleaned_data[name] = cell_field.clean(self.data.get(name))
                if hasattr(self, f"clean_{name}"):
                    self.cleaned_data[name] = getattr(self, f"clean_{name}")()
            except ValidationError as error:
                self.add_error(name, error)

    @classmethod
    def file_context(cls):
        return {}

    def unique_keys(self):
        """(column, key) of what may appear only once in the file; a None key is skipped."""
        return []

    @classmethod
    def database_checks(cls, cleaned):
        """Checks of the valid rows against the database, in order: each takes a cleaned row
        and returns (column, message) for the first problem or None."""
        return []


def existing(values, lookup):
    """The values ``lookup(chunk)`` finds, asked ``LOOKUP_CHUNK`` values at a time."""
    found = set()
    values = list(values)
    for start in range(0, len(values), LOOKUP_CHUNK):
        found.update(lookup(values[start : start + LOOKUP_CHUNK]))
    return found


class MemberRowForm(RowForm):
    phone = CellField(parse_phone, PHONE_MESSAGE)
    email = TextField()
    first_name = TextField(_("Longer than 100 characters."), max_length=100)
    last_name = TextField(_("Longer than 100 characters."), max_length=100)
    birth_date = CellField(parse_date, _("Use YYYY-MM-DD, a real date in the past."))
    marketing_consent = CellField(parse_bool, _("Use true or false."))
    enrolled_at = CellField(parse_optional_moment, _("Use an ISO 8601 time."))
    store = TextField()
    external_ref = TextField(_("Longer than 64 characters."), max_length=64, empty_value=None)

    same_as = {
        "phone": _("Same phone as line %(line)s."),
        "external_ref": _("Same customer id as line %(line)s."),
    }

    @classmethod
    def file_context(cls):
        return {
            "stores": {store.code: store for store in Store.objects.all()},
            "now": timezone.now(),
        }

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(_("Not a valid e-mail address.")) from None
        return email

    def clean_birth_date(self):
        birth = self.cleaned_data["birth_date"]
        if self.data.get("birth_date") and (
            birth is None or not (birth.year >= 1900 and birth <= self.context["now"].date())
        ):
            raise ValidationError(_("Use YYYY-MM-DD, a real date in the past."))
        return birth

    def clean_store(self):
        code = self.cleaned_data["store"]
        if not code:
            return None
        store = self.context["stores"].get(code)
        if store is None:
            raise ValidationError(_("No store with code %(code)s.") % {"code": code})
        return store

    def clean(self):
        if "enrolled_at" in self.cleaned_data and self.cleaned_data["enrolled_at"] is None:
            self.cleaned_data["enrolled_at"] = self.context["now"]
        return self.cleaned_data

    def unique_keys(self):
        return [
            ("phone", self.cleaned_data.get("phone")),
            ("external_ref", self.data.get("external_ref") or None),
        ]

    @classmethod
    def database_checks(cls, cleaned):
        phones = existing(
            {clean["phone"] for clean in cleaned},
            lambda chunk: {
                str(phone)
                for phone in Member.objects.filter(phone__in=chunk).values_list("phone", flat=True)
            },
        )
        refs = existing(
            {clean["external_ref"] for clean in cleaned if clean["external_ref"]},
            lambda chunk: set(
                Member.objects.filter(external_ref__in=chunk).values_list("external_ref", flat=True)
            ),
        )

        def phone_taken(clean):
            if clean["phone"] in phones:
                return "phone", _("A member with this phone already exists.")
            return None

        def ref_taken(clean):
            if clean["external_ref"] and clean["external_ref"] in refs:
                return "external_ref", _("A member with this customer id already exists.")
            return None

        phone_taken.finds_written = ref_taken.finds_written = True
        return [phone_taken, ref_taken]


def parse_amount(value):
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError from None
    # 0.00 is a receipt too (free goods in imported history); it earns nothing.
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:
        raise ValueError
    if amount >= Decimal("10000000000"):
        raise ValueError
    return money(amount)


MEMBER_REFERENCES = ("card_number", "phone", "external_ref")  # the first one given is read


class PurchaseRowForm(RowForm):
    external_id = TextField()
    store = TextField()
    occurred_at = CellField(parse_moment, _("Use an ISO 8601 time, not in the future."))
    amount = CellField(parse_amount, _("An amount of 0 or more with a dot and two decimals."))
    channel = TextField()
    card_number = TextField()
    phone = TextField()
    external_ref = TextField()

    same_as = {"external_id": _("Same receipt as line %(line)s.")}

    @classmethod
    def file_context(cls):
        return {
            "stores": {store.code: store for store in Store.objects.all()},
            "channels": {value for value, _label in Channel.choices},
            "now": timezone.now(),
        }

    def clean_external_id(self):
        external_id = self.cleaned_data["external_id"]
        if not external_id or len(external_id) > 64:
            raise ValidationError(_("Required, at most 64 characters."))
        return external_id

    def clean_store(self):
        store = self.context["stores"].get(self.cleaned_data["store"])
        if store is None:
            raise ValidationError(_("No store with this code."))
        return store

    def clean_occurred_at(self):
        if self.cleaned_data["occurred_at"] > self.context["now"]:
            raise ValidationError(_("Use an ISO 8601 time, not in the future."))
        return self.cleaned_data["occurred_at"]

    def clean_channel(self):
        channel = self.cleaned_data["channel"] or "store"
        if channel not in self.context["channels"]:
            raise ValidationError(_("One of: store, online, app."))
        return channel

    def clean(self):
        self.cleaned_data["member_ref"] = None
        for column in MEMBER_REFERENCES:
            value = self.data.get(column, "")
            if value:
                if column == "phone":
                    try:
                        value = normalise_phone(value)
                    except LoyaltyError:
                        self.add_error("phone", PHONE_MESSAGE)
                        break
                self.cleaned_data["member_ref"] = (column, value)
                break
        return self.cleaned_data

    def unique_keys(self):
        store = self.cleaned_data.get("store")
        return [("external_id", (store.pk if store else None, self.data.get("external_id", "")))]

    @classmethod
    def database_checks(cls, cleaned):
        members = {}
        for column in MEMBER_REFERENCES:
            values = list({clean["member_ref"][1] for clean in cleaned if _refers(clean, column)})
            for start in range(0, len(values), LOOKUP_CHUNK):
                chunk = values[start : start + LOOKUP_CHUNK]
                for pk, value, merged in Member.objects.filter(
                    **{f"{column}__in": chunk}
                ).values_list("pk", column, "merged_into_id"):
                    members[(column, str(value))] = merged or pk
        recorded = set()
        by_store = {}
        for clean in cleaned:
            by_store.setdefault(clean["store"].pk, []).append(clean["external_id"])
        for store_id, ids in by_store.items():
            recorded |= {
                (store_id, external_id)
                for external_id in existing(
                    ids,
                    lambda chunk, store_id=store_id: set(
                        Purchase.objects.filter(
                            store_id=store_id, external_id__in=chunk
                        ).values_list("external_id", flat=True)
                    ),
                )
            }

        def member_known(clean):
            ref = clean["member_ref"]
            clean["member_id"] = None
            if ref is not None:
                clean["member_id"] = members.get(ref)
                if clean["member_id"] is None:
                    return ref[0], _("No member with this %(column)s.") % {"column": ref[0]}
            return None

        def receipt_new(clean):
            if (clean["store"].pk, clean["external_id"]) in recorded:
                return "external_id", _("This receipt is already recorded.")
            return None

        receipt_new.finds_written = True
        return [member_known, receipt_new]


def _refers(clean, column):
    return clean["member_ref"] is not None and clean["member_ref"][0] == column


@dataclass
class Checked:
    rows: list = field(default_factory=list)  # (line, cleaned row)
    errors: list = field(default_factory=list)  # (line, column, message)
    written: int = 0  # rows an interrupted run of the same job had written (``resumed``)

    def error(self, line, column, message):
        self.errors.append((line, column, str(message)))


def check_rows(rows, form_class, *, resumed=False):
    """Validate the (line, row) pairs of a file with ``form_class``; returns Checked: the
    cleaned rows if every check passed, and the (line, column, message) errors sorted.

    ``resumed``: the job was interrupted while writing (its worker died), after the whole file
    had passed these checks. A row that a check marked ``finds_written`` now finds in the
    database was written by that run: it is counted in ``written`` and left out, not an error.
    """
    checked = Checked()
    context = form_class.file_context()
    first_line = {}
    for line, row in rows:
        if row is None:
            checked.error(line, "", _("Wrong number of values in this row."))
            continue
        form = form_class(row, **context)
        ok = form.is_valid()
        for column, messages in form.errors.items():
            for message in messages:
                checked.error(line, column, message)
        for column, key in form.unique_keys():
            if key is None:
                continue
            if (column, key) in first_line:
                line_before = first_line[(column, key)]
                checked.error(line, column, form_class.same_as[column] % {"line": line_before})
                ok = False
            else:
                first_line[(column, key)] = line
        if ok:
            checked.rows.append((line, form.cleaned_data))
    checks = form_class.database_checks([clean for _line, clean in checked.rows])
    kept = []
    for line, clean in checked.rows:
        for check in checks:
            if (problem := check(clean)) is not None:
                if resumed and getattr(check, "finds_written", False):
                    checked.written += 1
                else:
                    checked.error(line, *problem)
                break
        else:
            kept.append((line, clean))
    checked.rows = kept
    checked.errors.sort()
    return checked

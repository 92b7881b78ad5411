"""CSV import and export of members and historical purchases (SPEC section 5).

Files are UTF-8 (with or without BOM), comma-separated, with a header row; columns in any
order; unknown columns are refused by name. Every row is validated first and errors are
reported with their line numbers; nothing is written unless the whole file is valid, and
then rows are written in batches, each batch in its own transaction, so no row is ever
half-written. Exports produce the same columns, so an export can be imported again.
"""

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from loyalty.engine.errors import LoyaltyError
from loyalty.engine.money import money
from loyalty.engine.purchases import record_purchase
from loyalty.models import Channel, Purchase, Store, Tier
from members.models import Member, luhn_check_digit
from members.services import REFERRAL_ALPHABET, normalise_phone

MEMBER_COLUMNS = [
    "phone",
    "email",
    "first_name",
    "last_name",
    "birth_date",
    "marketing_consent",
    "enrolled_at",
    "store",
    "external_ref",
]
MEMBER_REQUIRED = {"phone"}
PURCHASE_COLUMNS = [
    "external_id",
    "store",
    "occurred_at",
    "amount",
    "channel",
    "card_number",
    "phone",
    "external_ref",
]
PURCHASE_REQUIRED = {"external_id", "store", "occurred_at", "amount"}
BATCH = 1000  # rows per transaction when writing: a batch is all or nothing
LOOKUP_CHUNK = 5000


class CsvFileError(Exception):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass
class Checked:
    rows: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # (line, column, message)

    def error(self, line, column, message):
        self.errors.append((line, column, str(message)))


def read_rows(data, columns, required):
    """(line number, row dict) for each data row; raises CsvFileError for a bad file."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    except UnicodeDecodeError:
        raise CsvFileError(_("The file is not UTF-8 text.")) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise CsvFileError(_("The file is empty.")) from None
    except csv.Error as exc:
        raise CsvFileError(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None
    unknown = [name for name in header if name not in columns]
    if unknown:
        raise CsvFileError(
            _("Unknown columns: %(names)s. Allowed: %(allowed)s.")
            % {"names": ", ".join(unknown), "allowed": ", ".join(columns)}
        )
    missing = sorted(required - set(header))
    if missing:
        raise CsvFileError(_("Missing columns: %(names)s.") % {"names": ", ".join(missing)})
    if len(set(header)) != len(header):
        raise CsvFileError(_("A column appears twice in the header."))
    rows = []
    try:
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            line = reader.line_num
            if len(values) != len(header):
                rows.append((line, None))
                continue
            rows.append(
                (line, {key: value.strip() for key, value in zip(header, values, strict=True)})
            )
    except csv.Error as exc:
        raise CsvFileError(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None
    return rows


def _parse_bool(value):
    lowered = value.lower()
    if lowered in ("true", "1", "yes", ""):
        return lowered != ""
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError


def _parse_moment(value):
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError
        moment = datetime.combine(day, time(12, 0))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _existing(model_field_values, lookup):
    found = set()
    values = list(model_field_values)
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start : start + LOOKUP_CHUNK]
        found.update(lookup(chunk))
    return found


def check_members(rows):
    """Validate member rows; returns Checked with cleaned rows and (line, column, error)."""
    checked = Checked()
    stores = {store.code: store.pk for store in Store.objects.all()}
    seen_phones, seen_refs = {}, {}
    now = timezone.now()
    for line, row in rows:
        if row is None:
            checked.error(line, "", _("Wrong number of values in this row."))
            continue
        clean, ok = {}, True
        try:
            clean["phone"] = normalise_phone(row.get("phone", ""))
        except LoyaltyError:
            checked.error(line, "phone", _("Not a valid phone number."))
            ok = False
        email = row.get("email", "").lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                checked.error(line, "email", _("Not a valid e-mail address."))
                ok = False
        clean["email"] = email
        for name in ("first_name", "last_name"):
            value = row.get(name, "")
            if len(value) > 100:
                checked.error(line, name, _("Longer than 100 characters."))
                ok = False
            clean[name] = value
        birth = row.get("birth_date", "")
        clean["birth_date"] = None
        if birth:
            try:
                clean["birth_date"] = parse_date(birth)
            except ValueError:
                clean["birth_date"] = None
            if clean["birth_date"] is None or not (
                clean["birth_date"].year >= 1900 and clean["birth_date"] <= now.date()
            ):
                checked.error(line, "birth_date", _("Use YYYY-MM-DD, a real date in the past."))
                ok = False
        try:
            clean["marketing_consent"] = _parse_bool(row.get("marketing_consent", ""))
        except ValueError:
            checked.error(line, "marketing_consent", _("Use true or false."))
            ok = False
        enrolled = row.get("enrolled_at", "")
        clean["enrolled_at"] = now
        if enrolled:
            try:
                clean["enrolled_at"] = _parse_moment(enrolled)
            except ValueError:
                checked.error(line, "enrolled_at", _("Use an ISO 8601 time."))
                ok = False
        code = row.get("store", "")
        clean["store_id"] = stores.get(code) if code else None
        if code and clean["store_id"] is None:
            checked.error(line, "store", _("No store with code %(code)s.") % {"code": code})
            ok = False
        ref = row.get("external_ref", "") or None
        if ref and len(ref) > 64:
            checked.error(line, "external_ref", _("Longer than 64 characters."))
            ok = False
        clean["external_ref"] = ref
        phone = clean.get("phone")
        if phone and phone in seen_phones:
            checked.error(
                line, "phone", _("Same phone as line %(line)s.") % {"line": seen_phones[phone]}
            )
            ok = False
        elif phone:
            seen_phones[phone] = line
        if ref and ref in seen_refs:
            checked.error(
                line,
                "external_ref",
                _("Same customer id as line %(line)s.") % {"line": seen_refs[ref]},
            )
            ok = False
        elif ref:
            seen_refs[ref] = line
        if ok:
            checked.rows.append((line, clean))
    taken_phones = _existing(
        seen_phones,
        lambda chunk: {
            str(phone)
            for phone in Member.objects.filter(phone__in=chunk).values_list("phone", flat=True)
        },
    )
    taken_refs = _existing(
        seen_refs,
        lambda chunk: set(
            Member.objects.filter(external_ref__in=chunk).values_list("external_ref", flat=True)
        ),
    )
    kept = []
    for line, clean in checked.rows:
        if clean["phone"] in taken_phones:
            checked.error(line, "phone", _("A member with this phone already exists."))
        elif clean["external_ref"] and clean["external_ref"] in taken_refs:
            checked.error(line, "external_ref", _("A member with this customer id already exists."))
        else:
            kept.append((line, clean))
    checked.rows = kept
    checked.errors.sort()
    return checked


def _unique_codes(count, make, field_name):
    codes = set()
    while len(codes) < count:
        fresh = {make() for _ in range(count - len(codes))} - codes
        taken = set(
            Member.objects.filter(**{f"{field_name}__in": fresh}).values_list(field_name, flat=True)
        )
        codes |= fresh - taken
    return list(codes)


def _card():
    body = "2" + "".join(secrets.choice("0123456789") for _ in range(11))
    return body + luhn_check_digit(body)


def _referral():
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


def write_members(rows, on_progress=None):
    """Create the members in batches (each batch one transaction). Returns how many."""
    tier = Tier.objects.order_by("threshold").first()
    written = 0
    for start in range(0, len(rows), BATCH):
        batch = [clean for _line, clean in rows[start : start + BATCH]]
        cards = _unique_codes(len(batch), _card, "card_number")
        referrals = _unique_codes(len(batch), _referral, "referral_code")
        members = []
        for clean, card, referral in zip(batch, cards, referrals, strict=True):
            member = Member(
                card_number=card,
                referral_code=referral,
                tier=tier,
                tier_since=clean["enrolled_at"],
                enrolment_channel=Member.Channel.IMPORT,
                phone=clean["phone"],
                email=clean["email"],
                first_name=clean["first_name"],
                last_name=clean["last_name"],
                birth_date=clean["birth_date"],
                marketing_consent=clean["marketing_consent"],
                consent_at=clean["enrolled_at"] if clean["marketing_consent"] else None,
                consent_source=Member.Channel.IMPORT if clean["marketing_consent"] else "",
                enrolled_at=clean["enrolled_at"],
                enrolled_store_id=clean["store_id"],
                external_ref=clean["external_ref"],
            )
            member.search_text = member.build_search_text()
            members.append(member)
        with transaction.atomic():
            Member.objects.bulk_create(members)
        written += len(members)
        if on_progress:
            on_progress(written)
    return written


def check_purchases(rows):
    checked = Checked()
    stores = {store.code: store for store in Store.objects.all()}
    channels = {value for value, _label in Channel.choices}
    seen = {}
    refs = {"card_number": set(), "phone": set(), "external_ref": set()}
    now = timezone.now()
    for line, row in rows:
        if row is None:
            checked.error(line, "", _("Wrong number of values in this row."))
            continue
        clean, ok = {}, True
        external_id = row.get("external_id", "")
        if not external_id or len(external_id) > 64:
            checked.error(line, "external_id", _("Required, at most 64 characters."))
            ok = False
        clean["external_id"] = external_id
        store = stores.get(row.get("store", ""))
        if store is None:
            checked.error(line, "store", _("No store with this code."))
            ok = False
        clean["store"] = store
        try:
            clean["occurred_at"] = _parse_moment(row.get("occurred_at", ""))
            if clean["occurred_at"] > now:
                raise ValueError
        except ValueError:
            checked.error(line, "occurred_at", _("Use an ISO 8601 time, not in the future."))
            ok = False
        try:
            amount = Decimal(row.get("amount", ""))
            if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:
                raise InvalidOperation
            if amount >= Decimal("10000000000"):
                raise InvalidOperation
            clean["amount"] = money(amount)
        except InvalidOperation:
            checked.error(line, "amount", _("A positive amount with a dot and two decimals."))
            ok = False
        channel = row.get("channel", "") or "store"
        if channel not in channels:
            checked.error(line, "channel", _("One of: store, online, app."))
            ok = False
        clean["channel"] = channel
        member_ref = None
        for column in ("card_number", "phone", "external_ref"):
            value = row.get(column, "")
            if value:
                if column == "phone":
                    try:
                        value = normalise_phone(value)
                    except LoyaltyError:
                        checked.error(line, "phone", _("Not a valid phone number."))
                        ok = False
                        break
                member_ref = (column, value)
                refs[column].add(value)
                break
        clean["member_ref"] = member_ref
        key = (store.pk if store else None, external_id)
        if key in seen:
            checked.error(
                line, "external_id", _("Same receipt as line %(line)s.") % {"line": seen[key]}
            )
            ok = False
        else:
            seen[key] = line
        if ok:
            checked.rows.append((line, clean))
    members = {}
    for column, values in refs.items():
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = list(values)[start : start + LOOKUP_CHUNK]
            for pk, value, merged in Member.objects.filter(**{f"{column}__in": chunk}).values_list(
                "pk", column, "merged_into_id"
            ):
                members[(column, str(value))] = merged or pk
    existing = set()
    by_store = {}
    for _line, clean in checked.rows:
        by_store.setdefault(clean["store"].pk, []).append(clean["external_id"])
    for store_id, ids in by_store.items():
        existing |= {
            (store_id, external_id)
            for external_id in _existing(
                ids,
                lambda chunk, store_id=store_id: set(
                    Purchase.objects.filter(store_id=store_id, external_id__in=chunk).values_list(
                        "external_id", flat=True
                    )
                ),
            )
        }
    kept = []
    for line, clean in checked.rows:
        ref = clean["member_ref"]
        clean["member_id"] = None
        if ref is not None:
            clean["member_id"] = members.get((ref[0], ref[1]))
            if clean["member_id"] is None:
                checked.error(
                    line, ref[0], _("No member with this %(column)s.") % {"column": ref[0]}
                )
                continue
        if (clean["store"].pk, clean["external_id"]) in existing:
            checked.error(line, "external_id", _("This receipt is already recorded."))
            continue
        kept.append((line, clean))
    checked.rows = kept
    checked.errors.sort()
    return checked


def write_purchases(rows, earn_points=False, on_progress=None):
    """Historical purchases. Without earn_points they are inserted in bulk and earn nothing;
    with it each goes through record_purchase (points as of the time of purchase)."""
    written = 0
    if earn_points:
        cards = dict(
            Member.objects.filter(
                pk__in={clean["member_id"] for _l, clean in rows if clean["member_id"]}
            ).values_list("pk", "card_number")
        )
        for _line, clean in rows:
            record_purchase(
                store=clean["store"],
                external_id=clean["external_id"],
                card_number=cards.get(clean["member_id"]),
                amount=clean["amount"],
                occurred_at=clean["occurred_at"],
                channel=clean["channel"],
                historical=True,
                earn=True,
                now=clean["occurred_at"],
            )
            written += 1
            if on_progress and written % 100 == 0:
                on_progress(written)
        if on_progress:
            on_progress(written)
        return written
    for start in range(0, len(rows), BATCH):
        batch = [
            Purchase(
                store=clean["store"],
                external_id=clean["external_id"],
                member_id=clean["member_id"],
                occurred_at=clean["occurred_at"],
                channel=clean["channel"],
                amount=clean["amount"],
                paid_amount=clean["amount"],
                qualifying_amount=clean["amount"],
                is_historical=True,
            )
            for _line, clean in rows[start : start + BATCH]
        ]
        with transaction.atomic():
            Purchase.objects.bulk_create(batch)
        written += len(batch)
        if on_progress:
            on_progress(written)
    return written


def error_report(errors):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "error"])
    writer.writerows(errors)
    return out.getvalue()


IMPORTERS = {
    "members": (MEMBER_COLUMNS, MEMBER_REQUIRED, check_members, write_members),
    "purchases": (PURCHASE_COLUMNS, PURCHASE_REQUIRED, check_purchases, write_purchases),
}


def run_import(job):
    """Validate the job's file, then write it if every row is valid. Progress goes to the job.

    Safe to run twice: a finished job is left alone, and a running one re-checks every row
    against the database, so rows written before an interruption are reported, not doubled.
    """
    from members.models import ImportJob

    if job.is_finished:
        return job
    columns, required, check, write = IMPORTERS[job.kind]
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    try:
        with job.file.open("rb") as handle:
            rows = read_rows(handle.read(), columns, required)
    except CsvFileError as exc:
        return _finish(job, ImportJob.Status.FAILED, message=str(exc))
    ImportJob.objects.filter(pk=job.pk).update(total=len(rows))
    checked = check(rows)
    if checked.errors:
        return _finish(
            job,
            ImportJob.Status.FAILED,
            done=len(rows),
            error_count=len({line for line, _c, _e in checked.errors}),
            error_report=error_report(checked.errors),
            message=_("Nothing was imported: fix the rows in the error report and try again."),
        )

    def progress(count):
        ImportJob.objects.filter(pk=job.pk).update(done=count, imported=count)

    extra = {"earn_points": job.earn_points} if job.kind == "purchases" else {}
    written = write(checked.rows, on_progress=progress, **extra)
    return _finish(
        job,
        ImportJob.Status.DONE,
        done=len(rows),
        imported=written,
        message=_("%(count)s rows imported.") % {"count": written},
    )


def _finish(job, status, **fields):
    from members.models import ImportJob

    ImportJob.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now(), **fields)
    job.refresh_from_db()
    return job


def member_export_rows(members):
    yield MEMBER_COLUMNS
    for row in members.values_list(
        "phone",
        "email",
        "first_name",
        "last_name",
        "birth_date",
        "marketing_consent",
        "enrolled_at",
        "enrolled_store__code",
        "external_ref",
    ).iterator(chunk_size=2000):
        phone, email, first, last, birth, consent, enrolled, store, ref = row
        yield [
            str(phone),
            email,
            first,
            last,
            birth.isoformat() if birth else "",
            "true" if consent else "false",
            enrolled.isoformat(),
            store or "",
            ref or "",
        ]


def purchase_export_rows(purchases):
    yield ["external_id", "store", "occurred_at", "amount", "channel", "card_number"]
    for external_id, store, occurred, amount, channel, card in purchases.values_list(
        "external_id", "store__code", "occurred_at", "amount", "channel", "member__card_number"
    ).iterator(chunk_size=2000):
        yield [external_id, store, occurred.isoformat(), f"{amount:.2f}", channel, card or ""]

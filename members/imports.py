"""CSV import and export of members and historical purchases (SPEC section 5).

Files are UTF-8 (with or without BOM), comma-separated, with a header row; columns in any
order; unknown columns are refused by name. Every row is validated first and errors are
reported with their line numbers; nothing is written unless the whole file is valid, and
then rows are written in batches, each batch in its own transaction, so no row is ever
half-written. Exports produce the same columns, so an export can be imported again.
"""

import csv
import io

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.engine.purchases import record_purchase
from loyalty.models import Purchase
from members.import_forms import MemberRowForm, PurchaseRowForm, check_rows
from members.models import Member
from members.services import enrol_members

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


class CsvFileError(Exception):
    """The file as a whole cannot be read (encoding, header)."""


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


def write_members(rows, on_progress=None, staff=None):
    """Enrol the members in batches (``enrol_members``: each batch one transaction, with its
    audit rows). Returns how many."""
    written = 0
    for start in range(0, len(rows), BATCH):
        batch = [clean for _line, clean in rows[start : start + BATCH]]
        enrol_members(rows=batch, staff=staff, channel=Member.Channel.IMPORT)
        written += len(batch)
        if on_progress:
            on_progress(written)
    return written


def write_purchases(rows, earn_points=False, on_progress=None):
    """Historical purchases. Without earn_points they are inserted in bulk and earn nothing;
    with it each goes through record_purchase (points as of the time of purchase)."""
    written = 0
    if earn_points:
        # A receipt of 0.00 has nothing to earn: it is written as plain history.
        free = [row for row in rows if not row[1]["amount"]]
        if free:
            written = write_purchases(free)
            rows = [row for row in rows if row[1]["amount"]]
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
    "members": (MEMBER_COLUMNS, MEMBER_REQUIRED, MemberRowForm, write_members),
    "purchases": (PURCHASE_COLUMNS, PURCHASE_REQUIRED, PurchaseRowForm, write_purchases),
}


def run_import(job):
    """Validate the job's file, then write it if every row is valid. Progress goes to the job.

    Safe to run twice: a finished job is left alone, and a running one (its worker died while
    writing) re-checks every row against the database, so the rows written before the
    interruption are counted as imported, not doubled, and the rest are written.
    """
    from members.models import ImportJob

    if job.is_finished:
        return job
    columns, required, row_form, write = IMPORTERS[job.kind]
    resumed = job.status == ImportJob.Status.RUNNING
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    try:
        with job.file.open("rb") as handle:
            rows = read_rows(handle.read(), columns, required)
    except CsvFileError as exc:
        return _finish(job, ImportJob.Status.FAILED, message=str(exc))
    ImportJob.objects.filter(pk=job.pk).update(total=len(rows))
    checked = check_rows(rows, row_form, resumed=resumed)
    if checked.errors:
        return _finish(
            job,
            ImportJob.Status.FAILED,
            done=len(rows),
            error_count=len({line for line, _c, _e in checked.errors}),
            error_report=error_report(checked.errors),
            message=_("Nothing was imported: fix the rows in the error report and try again."),
        )

    before = checked.written  # by the interrupted run

    def progress(count):
        ImportJob.objects.filter(pk=job.pk).update(done=before + count, imported=before + count)

    if job.kind == "purchases":
        extra = {"earn_points": job.earn_points}
    else:
        extra = {"staff": job.created_by}
    written = before + write(checked.rows, on_progress=progress, **extra)
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

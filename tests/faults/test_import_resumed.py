"""An import interrupted while writing (its worker died) completes on its next run: the rows the
interrupted run wrote count as imported, the rest are written, nothing twice. Runs on SQLite and
PostgreSQL (the SIGKILL version with a real worker is in test_worker_killed.py)."""

import pytest
from django.core.files.base import ContentFile

from loyalty.models import LedgerEntry, Purchase
from members import imports
from members.imports import run_import
from members.models import ImportJob, Member


def test_an_import_interrupted_while_writing_completes_on_its_next_run(
    many_members, admin_user_, monkeypatch
):
    ids = many_members(4)
    cards = dict(Member.objects.values_list("pk", "card_number"))
    text = "external_id,store,occurred_at,amount,card_number\n" + "".join(
        f"H-{number},MSK-01,2025-02-01T12:00:00+03:00,1000.00,{cards[pk]}\n"
        for number, pk in enumerate(ids, start=1)
    )
    job = ImportJob.objects.create(
        kind="purchases", earn_points=True, created_by=admin_user_, file=ContentFile(text, "h.csv")
    )
    real = imports.record_purchase
    calls = []

    def dying(**kwargs):
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(imports, "record_purchase", dying)
    with pytest.raises(RuntimeError):
        run_import(job)
    monkeypatch.undo()
    job.refresh_from_db()
    assert (job.status, Purchase.objects.count()) == ("running", 2)

    job = run_import(job)

    assert (job.status, job.done, job.imported, job.error_count) == ("done", 4, 4, 0)
    assert Purchase.objects.count() == 4
    assert LedgerEntry.objects.filter(kind="earn", points=30).count() == 4

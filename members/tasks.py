from celery import shared_task

from loyalty.engine.errors import LoyaltyError
from members.imports import run_import
from members.models import ImportJob


# No autoretry: the batches of an import commit one by one, and the sweep sends again only
# imports still waiting (PENDING).
@shared_task(acks_late=True, name="members.tasks.run_import_job", throws=(LoyaltyError,))
def run_import_job(job_id):
    """Run one CSV import (safe to run twice: a finished job is left alone)."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        run_import(job)


@shared_task(name="members.tasks.send_waiting_imports")
def send_waiting_imports():
    """The sweep: imports saved while the broker was down are sent to a worker (every minute)."""
    from loyalty.web.taskqueue import send_waiting

    return send_waiting(ImportJob.objects.filter(status=ImportJob.Status.PENDING), run_import_job)

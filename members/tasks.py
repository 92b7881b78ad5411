from celery import shared_task

from members.imports import run_import
from members.models import ImportJob


@shared_task(acks_late=True)
def run_import_job(job_id):
    """Run one CSV import (safe to run twice: a finished job is left alone)."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        run_import(job)


@shared_task
def send_waiting_imports():
    """The sweep: imports saved while the broker was down are sent to a worker (every minute)."""
    from loyalty.taskqueue import send_waiting

    return send_waiting(ImportJob.objects.filter(status=ImportJob.Status.PENDING), run_import_job)

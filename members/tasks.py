from celery import shared_task

from members.imports import run_import
from members.models import ImportJob


@shared_task(acks_late=True)
def run_import_job(job_id):
    """Run one CSV import (safe to run twice: a finished job is left alone)."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        run_import(job)

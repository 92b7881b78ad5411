"""Running a job: the run's record, the lock that keeps two runs of one job apart, progress.

The lock is a PostgreSQL advisory lock held by the run's connection (released by the database if
the process dies), or on SQLite a claimed row in ``JobLock`` (taken over when older than
JOB_LOCK_STALE_SECONDS). A run that finds the lock taken is recorded as skipped and does nothing.
"""

import contextlib
import traceback
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from loyalty.models import JobLock, JobRun


def _advisory_key(job):
    # A stable 31-bit number per job name, in a key space of its own (first argument).
    return zlib.crc32(job.encode()) & 0x7FFFFFFF


@contextlib.contextmanager
def job_lock(job, run):
    """Yield True when this run holds the job's lock, False when another run does."""
    if connection.vendor == "postgresql":
        key = _advisory_key(job)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(4242, %s)", [key])
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(4242, %s)", [key])
        return
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_LOCK_STALE_SECONDS)
    JobLock.objects.get_or_create(job=job)
    claimed = JobLock.objects.filter(
        Q(run__isnull=True) | Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True), job=job
    ).update(run=run, claimed_at=now)
    try:
        yield bool(claimed)
    finally:
        if claimed:
            JobLock.objects.filter(job=job, run=run).update(run=None, claimed_at=None)


PROGRESS = ["rows", "batches", "counts"]


def run_job(name, *, as_of=None, trigger=JobRun.Trigger.COMMAND, user=None, **options):
    """Run one job as of a moment and record the run. Returns the JobRun.

    Exceptions are recorded on the run and raised again, so a command exits non-zero and a
    Celery worker logs them.
    """
    from loyalty.jobs import JOBS

    job = JOBS[name]
    as_of = as_of or timezone.now()
    run = JobRun.objects.create(
        job=name, as_of=as_of, trigger=trigger, started_by=user, started_at=timezone.now()
    )
    with job_lock(name, run) as acquired:
        if not acquired:
            run.status = JobRun.Status.SKIPPED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
            return run
        try:
            job.function(as_of=as_of, run=run, **options)
        except BaseException as exc:
            run.status = JobRun.Status.FAILED
            run.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at", *PROGRESS])
            raise
        run.status = JobRun.Status.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at", *PROGRESS])
    return run

"""Celery tasks for the jobs: one task, the job's name as its argument, safe to run twice."""

from celery import shared_task
from django.utils.dateparse import parse_datetime

from loyalty.engine.errors import LoyaltyError
from loyalty.jobs.runner import run_job as run
from loyalty.models import JobRun


# No autoretry: the runner records a failed run, and the beat runs the job again.
@shared_task(name="loyalty.jobs.tasks.run_job", throws=(LoyaltyError,))
def run_job(name, as_of=None, trigger=JobRun.Trigger.SCHEDULE, user_id=None):
    """Run a job by name (``as_of`` an ISO time, or now). Overlapping runs are skipped."""
    from loyalty.models import User

    user = User.objects.filter(pk=user_id).first() if user_id else None
    job_run = run(
        name,
        as_of=parse_datetime(as_of) if as_of else None,
        trigger=trigger,
        user=user,
    )
    if job_run.status == JobRun.Status.DONE:
        # Messages the job queued go out now rather than at the next minute's round.
        from messaging.tasks import deliver_messages

        deliver_messages.delay()
    return job_run.pk

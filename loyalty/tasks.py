"""Celery tasks of the project package: the jobs' one task (run_job), heartbeat and referrals."""

from celery import current_app, shared_task
from django.utils.dateparse import parse_datetime

from loyalty.engine.errors import LoyaltyError
from loyalty.jobs.runner import run_job as run
from loyalty.models import JobRun, WorkerHeartbeat
from loyalty.web.taskqueue import RETRY_WHEN_BUSY


# The name is the task's old dotted path (loyalty/jobs/tasks.py): messages in flight and the beat
# schedule use it. No autoretry: the runner records a failed run, and the beat runs the job again.
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


# Acknowledged on receipt, unlike other tasks: a heartbeat lost with its worker needs no retry.
@shared_task(bind=True, name="loyalty.tasks.record_heartbeat", acks_late=False)
def record_heartbeat(self):
    """Record that the worker running this task is alive (what /healthz reads).

    Workers already do this on a timer; sending it through the broker proves the whole path,
    broker to worker to database: ``celery -A loyalty call loyalty.tasks.record_heartbeat``.
    """
    WorkerHeartbeat.record(self.request.hostname)


def send_credit_referrer(reward_id):
    """Send one referral's referrer credit to a worker, by name (registered with the engine's
    referrals.on_reward in loyalty/apps.py; it runs after the friend's purchase commits)."""
    current_app.send_task("loyalty.tasks.credit_referrer", args=[reward_id])


@shared_task(name="loyalty.tasks.credit_referrer", **RETRY_WHEN_BUSY)
def credit_referrer_task(reward_id):
    """Credit one referral's referrer (safe to run twice: the reward is claimed once)."""
    from loyalty.engine.referrals import credit_referrer

    return credit_referrer(reward_id=reward_id)


@shared_task(name="loyalty.tasks.credit_referrers")
def credit_referrers_task():
    """The sweep: referrers whose own task was lost are credited here (every few minutes)."""
    from loyalty.engine.referrals import credit_referrers

    return credit_referrers()

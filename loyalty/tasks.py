"""Celery tasks of the project package (the engine's jobs live next to their services)."""

from celery import current_app, shared_task

from loyalty.models import WorkerHeartbeat
from loyalty.web.taskqueue import RETRY_WHEN_BUSY


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

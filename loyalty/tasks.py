"""Celery tasks of the project package (the engine's jobs live next to their services)."""

from celery import shared_task

from loyalty.models import WorkerHeartbeat


# Acknowledged on receipt, unlike other tasks: a heartbeat lost with its worker needs no retry.
@shared_task(bind=True, name="loyalty.tasks.record_heartbeat", acks_late=False)
def record_heartbeat(self):
    """Record that the worker running this task is alive (what /healthz reads).

    Workers already do this on a timer; sending it through the broker proves the whole path,
    broker to worker to database: ``celery -A loyalty call loyalty.tasks.record_heartbeat``.
    """
    WorkerHeartbeat.record(self.request.hostname)


@shared_task(name="loyalty.tasks.credit_referrer")
def credit_referrer_task(reward_id):
    """Credit one referral's referrer (safe to run twice: the reward is claimed once)."""
    from loyalty.engine.referrals import credit_referrer

    return credit_referrer(reward_id=reward_id)


@shared_task(name="loyalty.tasks.credit_referrers")
def credit_referrers_task():
    """The sweep: referrers whose own task was lost are credited here (every few minutes)."""
    from loyalty.engine.referrals import credit_referrers

    return credit_referrers()

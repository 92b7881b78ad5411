"""Handing work to Celery from a request, with the broker (Redis) possibly down.

A request that records work for a worker (an import, a survey send) must not fail because the
broker cannot take the message: the record is committed first, the message is sent after
commit, and when the broker refuses it the record stays waiting (``enqueued_at`` empty) for the
sweep (``send_waiting``, on the beat every minute) to send once the broker is back. The page
tells the person so. Anything else that reaches the broker from a request and fails is turned
into a 503 by ``loyalty.web.middleware.ServiceDownMiddleware``, never a 500.
"""

import logging
from datetime import timedelta

from django.db import OperationalError as DatabaseError
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loyalty.engine.errors import Busy, LoyaltyError

logger = logging.getLogger(__name__)

# What an unreachable broker raises: kombu wraps the transport's connection errors in its
# OperationalError; redis-py's own escape when a call goes round kombu.
BROKER_ERRORS = (OperationalError, RedisConnectionError, RedisTimeoutError)

# The Celery options of a task that is safe to run again (pretix's habit): a lock wait that ran
# out (Busy) or a dropped database connection is retried after 1, 2, 4, 8, 16 s (with jitter);
# any other domain error is expected (logged without a traceback) and never retried. Sweeps and
# jobs do not take these: their next round on the beat is the retry.
RETRY_WHEN_BUSY = {
    "autoretry_for": (DatabaseError, Busy),
    "retry_backoff": True,
    "max_retries": 5,
    "throws": (LoyaltyError,),
}

# A waiting record is sent again only when older than this: the request that made it has long
# had its chance to send it (and a message just sent is not doubled).
SWEEP_AFTER = timedelta(minutes=1)


class Handoff:
    """What became of a message sent after commit: ``sent`` is True once the broker took it,
    False when the broker was unreachable (the record waits for the sweep), None while the
    transaction is still open."""

    sent = None

    @property
    def waiting(self):
        return self.sent is False


def delay_on_commit(task, *args, record=None, **kwargs):
    """After commit, ``task.delay(*args, **kwargs)``; on success ``record.enqueued_at`` is set
    (so the sweep leaves it alone). Never raises for a broker that is down. Returns a Handoff."""
    handoff = Handoff()

    def send():
        try:
            task.delay(*args, **kwargs)
        except BROKER_ERRORS as exc:
            handoff.sent = False
            logger.warning("%s%r left for when the broker is back: %s", task.name, args, exc)
            return
        handoff.sent = True
        if record is not None:
            type(record).objects.filter(pk=record.pk).update(enqueued_at=timezone.now())

    transaction.on_commit(send)
    return handoff


def send_waiting(waiting, task, *, now=None):
    """Send ``task(pk)`` for every record of ``waiting`` (a queryset of records still to do)
    whose message never reached the broker. Each is claimed first by a conditional update, so
    two sweeps do not both send it. Returns how many were sent."""
    now = now or timezone.now()
    ids = list(
        waiting.filter(enqueued_at__isnull=True, created_at__lt=now - SWEEP_AFTER).values_list(
            "pk", flat=True
        )
    )
    sent = 0
    for pk in ids:
        if not waiting.filter(pk=pk, enqueued_at__isnull=True).update(enqueued_at=now):
            continue  # another sweep took it
        try:
            task.delay(pk)
        except BROKER_ERRORS:
            waiting.filter(pk=pk).update(enqueued_at=None)  # the next sweep tries again
            raise
        sent += 1
    if sent:
        logger.warning("%d waiting %s sent to the workers", sent, waiting.model.__name__)
    return sent

"""Celery tasks of messaging: thin, safe to run twice."""

import time

from celery import shared_task

from messaging.services import deliver_due

# A round stops taking new batches after this long, so the next beat's round does not pile up.
ROUND_SECONDS = 50


@shared_task(name="messaging.tasks.deliver_messages")
def deliver_messages():
    """Drain the outbox: send every due message (consent, quiet hours and cap applied)."""
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < ROUND_SECONDS:
        counts = deliver_due()
        handled = sum(counts.values())
        total += handled
        if handled == 0:
            break
    return total

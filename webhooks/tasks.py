"""Celery tasks of webhooks: thin, safe to run twice."""

import time

from celery import current_app, shared_task

from webhooks.services import deliver_due

# A round stops taking new batches after this long, so the next beat's round does not pile up.
ROUND_SECONDS = 50


@shared_task(name="webhooks.tasks.deliver_webhooks")
def deliver_webhooks():
    """Send every due webhook delivery (the beat runs it every minute; a change that wrote
    deliveries also sends it after commit)."""
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < ROUND_SECONDS:
        counts = deliver_due()
        handled = sum(counts.values())
        total += handled
        if handled == 0:
            break
    return total


def send_deliveries():
    """Tell a worker that deliveries wait (registered with webhook_events.on_event; runs after
    the change commits). No retry if the broker is down: the beat's round sends them."""
    current_app.send_task("webhooks.tasks.deliver_webhooks", retry=False)

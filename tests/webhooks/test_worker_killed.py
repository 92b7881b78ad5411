"""A real Celery worker killed with SIGKILL in the middle of a webhook delivery: after the lease
ends the next worker sends it again, the row says delivered once, and the receiver, which drops
a delivery id it has processed, processes it once (issue 21, item 2)."""

from datetime import timedelta

from django.utils import timezone

from tests.faults.conftest import needs_row_locks
from webhooks.models import Delivery, Event
from webhooks.tasks import deliver_webhooks

# Real Redis with fast redelivery (tests/faults/test_worker_killed.py), and a short lease.
pytestmark = needs_row_locks  # the fault tests' worker setup: PostgreSQL only
ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "1",
    "CELERY_RESTORE_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "2",
}


def test_a_worker_killed_while_posting_is_replaced_and_the_event_is_processed_once(
    private_redis, celery_on, celery_worker, pos, receiver, subscribe
):
    subscribe(Event.MEMBER_ENROLLED)
    pos.enrol()
    pos.enrol()
    env = {"REDIS_URL": private_redis.url, **ENV}
    celery_on(private_redis.url)
    first = celery_worker(env=env)
    queue = first.queues[0]

    receiver.holding = True  # the first POST waits: the worker is inside the delivery
    deliver_webhooks.apply_async(queue=queue)
    first.wait_for(receiver.arrived.is_set, "the worker to post the first delivery")
    first.kill()
    receiver.holding = False
    receiver.hold.set()
    held = Delivery.objects.get(pk=int(receiver.requests[0]["headers"]["X-Loyalty-Delivery"]))
    assert (held.status, held.attempts) == ("pending", 1)
    assert held.leased_until > timezone.now() - timedelta(seconds=5)

    second = celery_worker(queues=[queue], keep_messages=True, env=env)
    second.wait_for(
        lambda: Delivery.objects.filter(status="delivered").count() == 2,
        "the second worker to deliver both",
    )
    rows = Delivery.objects.order_by("id")
    assert rows.count() == 2
    assert [row.status for row in rows] == ["delivered", "delivered"]
    assert sorted(receiver.processed) == sorted(str(row.pk) for row in rows)
    ids = [request["headers"]["X-Loyalty-Delivery"] for request in receiver.requests]
    assert ids.count(str(held.pk)) == 2  # sent twice (the first answer never reached the worker)
    assert all(request["signed"] for request in receiver.requests)

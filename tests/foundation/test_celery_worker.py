"""A real Celery worker process runs a real task through the real broker.

Redis when REDIS_URL is set (CI), the filesystem broker under var/test/ otherwise. The worker is
``celery -A loyalty worker`` in a subprocess (the ``celery_worker`` fixture), on the test
database, listening on a queue of its own so that nothing else can take its messages and it takes
nobody else's.
"""

from django.test import Client

from loyalty.models import WorkerHeartbeat
from loyalty.tasks import record_heartbeat

# The timer heartbeat is pushed out of the way: within a test only the task can move the
# worker's heartbeat forward.
NO_TIMER_HEARTBEAT = {"WORKER_HEARTBEAT_SECONDS": "3600"}


def heartbeat_of(worker):
    return WorkerHeartbeat.objects.get(hostname=worker.hostname).seen_at


def test_worker_runs_a_task_sent_through_the_broker(celery_worker):
    worker = celery_worker(env=NO_TIMER_HEARTBEAT)
    started_at = heartbeat_of(worker)

    record_heartbeat.apply_async(queue=worker.queues[0])

    worker.wait_for(lambda: heartbeat_of(worker) > started_at, "the task to run", seconds=30)
    assert "Task loyalty.tasks.record_heartbeat[" in worker.log()


def test_healthz_reports_the_running_worker_then_its_absence(celery_worker):
    worker = celery_worker()

    response = Client().get("/healthz")

    assert response.status_code == 200, response.json()
    assert response.json()["worker"] == {"ok": True, "workers": [worker.hostname]}

    assert worker.stop() == 0
    response = Client().get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["worker"]["ok"] is False
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True

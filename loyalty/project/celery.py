"""The Celery application. Workers start with ``celery -A loyalty worker``."""

import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.project.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Every few seconds the worker records that it is alive, so /healthz can tell.

    A row in the database works with every broker (the filesystem transport has no
    broadcast for ``inspect ping``) and across machines.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        from django.conf import settings

        self.hostname = worker.hostname
        self.beat()
        self.tref = worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat)

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
        from loyalty.models import WorkerHeartbeat

        WorkerHeartbeat.objects.filter(hostname=self.hostname).delete()

    def beat(self):
        from django.db import close_old_connections

        from loyalty.models import WorkerHeartbeat

        close_old_connections()
        WorkerHeartbeat.record(self.hostname)


app.steps["worker"].add(HeartbeatStep)

"""/healthz: is the database answering, is the broker reachable, is a worker alive?"""

from datetime import timedelta

from celery import current_app as celery_app
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from loyalty.models import WorkerHeartbeat


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "error": str(exc).strip().splitlines()[0][:200]}
    return {"ok": True, "vendor": connection.vendor}


def check_broker():
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:
        return {"ok": False, "error": str(exc).strip().splitlines()[0][:200]}
    return {"ok": True, "transport": str(transport)}


def check_worker():
    window = timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS * 3)
    try:
        alive = list(
            WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - window)
            .order_by("hostname")
            .values_list("hostname", flat=True)
        )
    except Exception as exc:
        return {"ok": False, "error": str(exc).strip().splitlines()[0][:200]}
    if not alive:
        return {"ok": False, "error": f"no worker heartbeat in the last {window.seconds} s"}
    return {"ok": True, "workers": alive}


@never_cache
def healthz(request):
    checks = {"database": check_database(), "broker": check_broker(), "worker": check_worker()}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JsonResponse(body, status=200 if healthy else 503)

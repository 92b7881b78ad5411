"""/healthz answers 200 only when the database, the broker and a worker are all alive, and names
the part that is down otherwise."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from loyalty.models import WorkerHeartbeat
from loyalty.project.celery import app as celery_app

# Port 1 on this machine: nothing listens there.
CLOSED_BROKER_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def fresh_heartbeat(db):
    WorkerHeartbeat.objects.create(hostname="celery@web-1", seen_at=timezone.now())


def test_healthz_is_ok_when_database_broker_and_a_worker_are_alive(client, fresh_heartbeat):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": connection.vendor}
    assert body["broker"]["ok"] is True
    assert body["worker"] == {"ok": True, "workers": ["celery@web-1"]}


def test_healthz_is_never_cached(client, fresh_heartbeat):
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_unavailable_with_no_worker_heartbeat(client, db):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    window = settings.WORKER_HEARTBEAT_SECONDS * 3
    assert body["worker"] == {"ok": False, "error": f"no worker heartbeat in the last {window} s"}
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_healthz_is_unavailable_when_the_last_heartbeat_is_stale(client, db):
    window = timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS * 3)
    WorkerHeartbeat.objects.create(
        hostname="celery@web-1", seen_at=timezone.now() - window - timedelta(seconds=1)
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["worker"]["ok"] is False


def test_healthz_is_unavailable_when_the_broker_is_unreachable(
    client, fresh_heartbeat, monkeypatch
):
    monkeypatch.setattr(celery_app.conf, "broker_url", CLOSED_BROKER_URL)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["broker"]["ok"] is False
    assert "127.0.0.1:1" in body["broker"]["error"]
    assert body["database"]["ok"] is True
    assert body["worker"]["ok"] is True


def test_healthz_needs_no_sign_in_and_no_https_redirect(client, fresh_heartbeat, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz")

    assert response.status_code == 200

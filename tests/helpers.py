"""Helpers shared by tests: subprocess environments, the test database's URL, accessibility."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


def subprocess_env(**overrides):
    """The environment for a ``manage.py`` or ``celery`` subprocess.

    It starts from the suite's environment (TESTING, SECRET_KEY, VAR_DIR, DATABASE_URL,
    REDIS_URL) with the project's real settings module; an override of None removes a variable.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty.project.settings",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST"):
        env.pop(name, None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def database_url(connection):
    """A DATABASE_URL naming the database ``connection`` uses (the test database in a test)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    if connection.vendor != "postgresql":
        raise ValueError(f"no URL form for a {connection.vendor} database")
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or "localhost"
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(settings['NAME'], safe='')}"


class CeleryWorker:
    """A real ``celery -A loyalty worker`` process on the test database.

    Start it with the ``celery_worker`` fixture, which also stops it after the test.
    """

    def __init__(
        self, *, database_url, log_path, queues=None, pool="solo", concurrency=1, env=None
    ):
        self.name = f"test-{uuid.uuid4().hex[:12]}"
        self.hostname = f"{self.name}@test"
        self.queues = list(queues or [f"{self.name}-queue"])
        self.log_path = log_path
        command = [
            str(VENV_BIN / "celery"),
            "-A",
            "loyalty",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--hostname",
            self.hostname,
            "--queues",
            ",".join(self.queues),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env=subprocess_env(DATABASE_URL=database_url, **(env or {})),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so that kill() also reaches prefork children.
                start_new_session=True,
            )

    def log(self, last=4000):
        return self.log_path.read_text(errors="replace")[-last:]

    def wait_for(self, condition, what, seconds=60):
        """Poll ``condition()`` until true; fail with the worker's log if it never is."""
        import pytest

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.2)
        pytest.fail(f"waited {seconds} s for {what}; worker log:\n{self.log()}")

    def wait_until_ready(self, seconds=60):
        """Wait for the worker's first heartbeat (written by its start-up bootstep)."""
        from loyalty.models import WorkerHeartbeat

        self.wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname=self.hostname).exists(),
            "the worker to start",
            seconds,
        )
        return self

    def stop(self, timeout=30):
        """Warm shutdown (SIGTERM), as a deployment stops a worker; returns the exit code.

        On the filesystem broker it takes about five seconds: Celery waits for its timer
        thread's next tick.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self):
        """SIGKILL the worker and its pool processes at once (as a crash or the OOM killer)."""
        # The whole group, even if the main process is gone: no pool process may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def delete_queues(app, queues):
    """Remove queues, with their messages and bindings, from the broker."""
    from kombu import Exchange, Queue

    with app.connection_for_write() as conn:
        for name in queues:
            bound = Queue(name, Exchange(name, type="direct"), routing_key=name)(
                conn.default_channel
            )
            bound.declare()
            bound.delete()


# Impacts that fail a page: all but "minor".
FAILING_IMPACTS = ("moderate", "serious", "critical")


def accessibility_violations(page):
    """Run axe-core on the page and return its moderate, serious and critical violations."""
    # evaluate() runs through the DevTools protocol, so the page's Content-Security-Policy
    # (no inline scripts) does not stop axe from loading.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v.get("impact") in FAILING_IMPACTS]


def describe_violations(violations):
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        lines.append(f"    {violation['helpUrl']}")
        for node in violation["nodes"][:5]:
            target = json.dumps(node["target"], ensure_ascii=False)
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    at {target}: {summary}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    ... and {len(violation['nodes']) - 5} more elements")
    return "\n".join(lines)


def assert_accessible(page):
    """Fail with a readable list if axe-core finds a moderate, serious or critical violation."""
    violations = accessibility_violations(page)
    assert not violations, (
        f"axe-core found {len(violations)} moderate/serious/critical accessibility problem(s) "
        f"on {page.url}:\n{describe_violations(violations)}"
    )


def prepared_statement_count():
    """How many statements this test's PostgreSQL connection has prepared (psycopg's own)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        return cursor.fetchone()[0]


def session_queries():
    """Queries a signed-in page spends reading its session: none when a shared cache holds them."""
    from django.conf import settings

    cached = settings.SESSION_ENGINE in (
        "loyalty.web.sessions",
        "django.contrib.sessions.backends.cached_db",
    )
    return 0 if cached else 1

"""Fixtures of the fault tests: a private redis-server the test may kill and start again, a real
gunicorn serving the product on the test database, and this process's Celery pointed at a broker
of the test's choosing.

The suite's shared Redis (REDIS_URL, on 6379) is never stopped: every Redis a fault test stops is
its own, on a free port, with no persistence (a killed Redis forgets its queues, the worst case).
"""

import contextlib
import signal
import socket
import subprocess
import time

import pytest
from django.db import connection

from tests.campaigns.conftest import make_campaign, many_members  # noqa: F401  (fixtures)
from tests.helpers import BASE_DIR, VENV_BIN, database_url, subprocess_env


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, what, log_path, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
                pytest.fail(f"{what} did not start:\n{log}")
            time.sleep(0.1)


class RedisServer:
    """A redis-server of the test's own on a free port: ``stop()`` kills it (SIGKILL, as a crash),
    ``start()`` brings it back on the same port, empty."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None

    def start(self):
        log_path = self.directory / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process, "redis-server", log_path, seconds=20)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    """A running redis-server of this test's own (``.url``, ``.stop()``, ``.start()``)."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def celery_on(monkeypatch):
    """Point this process's Celery at a broker URL: ``celery_on(private_redis.url)``; the suite's
    broker comes back after the test."""
    from loyalty.project.celery import app

    saved = app.conf.broker_url, app._pool, app.amqp._producer_pool

    def point(url):
        app.conf.broker_url = url
        app._pool = app.amqp._producer_pool = None  # built again from the URL on first use

    yield point
    with contextlib.suppress(Exception):
        if app._pool is not None:
            app._pool.force_close_all()
    app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


class Server:
    """A real gunicorn serving the product (``.base`` URL, ``.log()``)."""

    def __init__(self, process, base, log_path):
        self.process, self.base, self.log_path = process, base, log_path

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """Start gunicorn on the test database: ``server = gunicorn(REDIS_URL=..., workers=2)``."""
    from django.db import connection

    started = []

    def start(*, workers=1, threads=1, **env):
        port = free_port()
        log_path = tmp_path / f"gunicorn-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "loyalty.project.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                ],
                cwd=BASE_DIR,
                env=subprocess_env(DATABASE_URL=database_url(connection), **env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        wait_for_port(port, process, "gunicorn", log_path)
        return Server(process, f"http://127.0.0.1:{port}", log_path)

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- Stopping a worker in the middle of a transaction ------------------------------------------

needs_row_locks = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=(
        "stops the worker inside its transaction by holding a row lock from another connection: "
        "SQLite has no row locks (a writer locks the whole file, the test's own connection too)"
    ),
)


class RowLock:
    """A row lock held by a connection of its own: ``with RowLock(Member, pk) as lock:``;
    ``lock.waiters()`` counts the backends waiting for it (PostgreSQL)."""

    def __init__(self, model, pk):
        self.table, self.pk = model._meta.db_table, pk

    def __enter__(self):
        import psycopg

        params = connection.get_connection_params()
        for name in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(name, None)
        self.connection = psycopg.connect(**params)
        try:
            self.connection.execute(
                f'SELECT 1 FROM "{self.table}" WHERE id = %s FOR UPDATE',  # noqa: S608  (a model's table)
                [self.pk],
            )
        except Exception:
            self.connection.close()
            raise
        self.pid = self.connection.info.backend_pid
        return self

    def wait_for_waiter(self, seconds=30):
        """Wait until a backend waits for this lock (its transaction is open, stopped here)."""
        deadline = time.monotonic() + seconds
        while self.waiters() == 0:
            assert time.monotonic() < deadline, "nothing came to wait for the lock"
            time.sleep(0.05)

    def waiters(self):
        """Backends waiting for a lock this connection holds."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                [self.pid],
            )
            return cursor.fetchone()[0]

    def __exit__(self, *exc):
        self.connection.rollback()
        self.connection.close()

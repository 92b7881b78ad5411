"""Start the web server, a Celery worker and beat together (the embedded demo mode)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from loyalty.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS

# Ctrl-C in the terminal (SIGINT), `kill` or a process manager (SIGTERM), a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A warm shutdown lets running requests and tasks finish; the worker on the filesystem broker
# takes about five seconds (its timer's next tick). Past this, whatever is left is killed.
GRACE_SECONDS = 20


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until interrupted (Ctrl-C or SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, host, port, web_workers, **options):
        (settings.VAR_DIR / "celery").mkdir(parents=True, exist_ok=True)
        stop_requests = []
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda signum, frame: stop_requests.append(signum))
        bin_dir = os.path.dirname(sys.executable)
        processes = []
        try:
            processes.append(
                spawn(
                    os.path.join(bin_dir, "gunicorn"),
                    "loyalty.project.wsgi",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(web_workers),
                    "--access-logfile",
                    "-",
                )
            )
            processes.append(
                spawn(
                    os.path.join(bin_dir, "celery"),
                    "-A",
                    "loyalty",
                    "worker",
                    "--beat",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    settings.CELERY_BEAT_SCHEDULE_FILENAME,
                )
            )
            time.sleep(1)
            self.banner(host, port)
            while not stop_requests and all(process.poll() is None for process in processes):
                time.sleep(0.2)
        finally:
            stop(processes, stop_requests)
        if not stop_requests:
            # One of them ended on its own (a port in use, a broken setting): say so, fail.
            self.stderr.write("The web server or the worker stopped; everything was stopped.")
            sys.exit(1)

    def banner(self, host, port):
        url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"  # noqa: S104
        self.stdout.write(self.style.SUCCESS(f"\nLoyalty back-office: {url}"))
        self.stdout.write(f"Demo logins (password '{DEMO_PASSWORD}'):")
        for username, role, _stores in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role}")
        self.stdout.write("Press Ctrl-C to stop.\n")


def spawn(*command):
    # A process group of its own: Ctrl-C in the terminal reaches only this command, which stops
    # each child once (a second SIGINT would make Celery cold-stop, gunicorn's SIGINT is a quick
    # stop), and the whole group, with gunicorn's workers, Celery's pool and beat, can be killed.
    return subprocess.Popen(command, process_group=0)  # noqa: S603  (our own executables)


def stop(processes, stop_requests):
    """SIGTERM each child (a warm shutdown), wait for it up to GRACE_SECONDS or until a second
    stop signal, then SIGKILL whatever is left in each child's process group: no orphans."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    asked = len(stop_requests)
    deadline = time.monotonic() + GRACE_SECONDS
    while (
        any(process.poll() is None for process in processes)
        and time.monotonic() < deadline
        and len(stop_requests) <= max(asked, 1)
    ):
        time.sleep(0.1)
    for process in processes:
        # The group outlives its leader while a member does; then its id cannot be reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

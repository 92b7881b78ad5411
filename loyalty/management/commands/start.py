"""Start the web server, a Celery worker and beat together (the embedded demo mode)."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from loyalty.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERS


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat until interrupted (Ctrl-C)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, host, port, web_workers, **options):
        (settings.VAR_DIR / "celery").mkdir(parents=True, exist_ok=True)
        bin_dir = os.path.dirname(sys.executable)
        processes = [
            subprocess.Popen(  # noqa: S603  (our own executables, no shell)
                [
                    os.path.join(bin_dir, "gunicorn"),
                    "loyalty.wsgi",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(web_workers),
                    "--access-logfile",
                    "-",
                ]
            ),
            subprocess.Popen(  # noqa: S603
                [
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
                ]
            ),
        ]
        time.sleep(1)
        url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"  # noqa: S104
        self.stdout.write(self.style.SUCCESS(f"\nLoyalty back-office: {url}"))
        self.stdout.write(f"Demo logins (password '{DEMO_PASSWORD}'):")
        for username, role, _stores in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role}")
        self.stdout.write("Press Ctrl-C to stop.\n")
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, None)]
        if failed:
            sys.exit(1)

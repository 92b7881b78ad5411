"""Settings for the test suite: the project's own settings under a fixed test environment.

pytest-django loads Django settings before any conftest.py is imported, so the environment the
settings read has to be put in place here (pyproject points DJANGO_SETTINGS_MODULE at this
module). ``os.environ`` is changed on purpose: subprocesses the tests start (``manage.py``, a
Celery worker) inherit the same environment.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Whatever the shell says, the suite runs as TESTING with DEBUG off (DEBUG would change error
# pages and static files under test). A SECRET_KEY is only defaulted: CI may pass its own.
os.environ["TESTING"] = "true"
os.environ.pop("DEBUG", None)
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# The concurrency tests queue 20 writers on one member's row; on a loaded 2-core CI machine the
# last can wait longer than production's 5 s lock bound, which would answer "busy" instead.
os.environ.setdefault("DB_LOCK_TIMEOUT_MS", "30000")
# Tests keep their files (filesystem broker queue, mail, SQLite) apart from `make run`'s var/.
os.environ["VAR_DIR"] = str(BASE_DIR / "var" / "test")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Each xdist worker gets its own cache keys when the cache is a shared Redis.
os.environ["CACHE_KEY_PREFIX"] = f"loyalty-test-{_worker}"

from loyalty.project.settings import *  # noqa: E402, F403
from loyalty.project.settings import DATABASES, VAR_DIR  # noqa: E402

# Tasks that tests send with .delay() go to a queue of the test run's own, so that a worker of
# `make run` on the same Redis never takes them (and each xdist worker has its own).
CELERY_TASK_DEFAULT_QUEUE = f"loyalty-test-{_worker}"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not SQLite's in-memory default, so that processes the tests start (a Celery
    # worker) can open the same test database. Named by process, so that two runs in one
    # checkout do not recreate each other's file; pytest-django appends the xdist worker id.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    for _old in VAR_DIR.glob("test-db-*.sqlite3*"):
        _pid = _old.name.split("-")[2].split(".")[0]
        if _pid.isdigit() and not Path(f"/proc/{_pid}").exists():
            _old.unlink(missing_ok=True)  # left by a run that was killed
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}

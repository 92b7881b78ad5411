"""`manage.py start` (what `make run` ends in) stops the web server, the worker and beat with it.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group; `kill`, systemd or
make's own SIGTERM reach only the command. Either way no gunicorn, Celery or beat process may be
left running. The command runs here on the test database with the filesystem broker under a
temporary VAR_DIR, so its worker takes no other test's messages.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.helpers import BASE_DIR, VENV_BIN, database_url, subprocess_env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid):
    """Every running process below ``pid``, from /proc: {pid: command line}."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if state != "Z":
            parents[int(entry.name)] = int(ppid)
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = command_line(child)
                frontier.append(child)
    return found


def command_line(pid):
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def running(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (our own local server)
            return True
    except urllib.error.HTTPError:
        return True  # 503 while no worker heartbeat yet: the web server is up all the same
    except OSError:
        return False


@pytest.fixture
def started(transactional_db, tmp_path):
    """``manage.py start`` on a free port, waited for until web, worker and beat are up."""
    port = free_port()
    log_path = tmp_path / "start.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                str(VENV_BIN / "python"),
                "manage.py",
                "start",
                "--port",
                str(port),
                "--web-workers",
                "1",
            ],
            cwd=BASE_DIR,
            env=subprocess_env(
                DATABASE_URL=database_url(connection), REDIS_URL=None, VAR_DIR=str(tmp_path)
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            # As a shell runs a foreground job: a process group of its own, as the terminal's.
            start_new_session=True,
        )
    children = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if process.poll() is not None:
                pytest.fail(f"start exited ({process.returncode}):\n{text[-4000:]}")
            children = descendants(process.pid)
            if (
                " ready." in text
                and "beat: Starting" in text
                and answers(f"http://127.0.0.1:{port}/healthz")
                and len(children) == 6
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"start never came up; processes {children}:\n{text[-4000:]}")
        yield process, children, log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in descendants(process.pid) | children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


def programs(children):
    return sorted(Path(cmd.split()[1]).name for cmd in children.values())


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda pid: os.kill(pid, signal.SIGTERM), id="sigterm-to-the-command"),
        pytest.param(lambda pid: os.killpg(pid, signal.SIGINT), id="ctrl-c-to-the-terminal"),
    ],
)
def test_stopping_start_stops_web_worker_and_beat(started, send):
    process, children, log_path = started
    # gunicorn's master and one web worker; Celery's main process, two pool processes and beat.
    assert programs(children) == ["celery"] * 4 + ["gunicorn"] * 2

    send(process.pid)

    returncode = process.wait(timeout=60)
    left = {pid: cmd for pid, cmd in children.items() if running(pid)}
    assert left == {}
    assert returncode == 0, log_path.read_text(errors="replace")[-4000:]
    # Each stopped warmly, not killed: gunicorn and Celery said goodbye.
    text = log_path.read_text(errors="replace")
    assert "Shutting down: Master" in text
    assert "worker: Warm shutdown" in text

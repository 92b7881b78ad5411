"""Two runs of one job at once, as two real ``manage.py runjob`` processes (issue 20 item 1):
one runs, the other is recorded as skipped (or, started after the first ended, finds nothing to
do); the ledger is that of a single run."""

import subprocess
import sys

import pytest
from django.db import connection

from loyalty.engine.ledger import ledger_drift
from loyalty.models import JobRun, LedgerEntry
from members.models import Member
from tests.helpers import BASE_DIR, database_url, subprocess_env
from tests.jobs.conftest import at

AS_OF = "2025-03-02T00:00:00+03:00"


def runjob(name):
    return subprocess.Popen(
        [sys.executable, "manage.py", "runjob", name, "--as-of", AS_OF],
        cwd=BASE_DIR,
        env=subprocess_env(DATABASE_URL=database_url(connection)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def expiring(transactional_db, enrol, buy):
    """Five members holding 30 points each that expire on 2025-03-01 10:00."""
    members = [enrol() for _ in range(5)]
    for member in members:
        buy(member, "1000.00", at("2024-03-01 10:00"))
    return members


def test_two_runjob_processes_at_once_expire_each_lot_once(expiring):
    first, second = runjob("expire_points"), runjob("expire_points")
    outputs = [process.communicate(timeout=120)[0] for process in (first, second)]
    codes = sorted(process.returncode for process in (first, second))

    assert codes in ([0, 0], [0, 1]), outputs
    runs = list(JobRun.objects.filter(job="expire_points").order_by("-rows"))
    assert runs[0].status == "done" and runs[0].rows == 5
    assert runs[1].rows == 0 and runs[1].status in ("done", "skipped")
    if codes == [0, 1]:
        assert runs[1].status == "skipped"
        assert any("already running" in out for out in outputs), outputs
    assert LedgerEntry.objects.filter(kind="expire").count() == 5
    assert (
        sorted(LedgerEntry.objects.filter(kind="expire").values_list("points", flat=True))
        == [-30] * 5
    )
    assert list(Member.objects.values_list("points_balance", flat=True)) == [0] * 5
    assert list(ledger_drift()) == []


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="holds the job's advisory lock from another connection: SQLite has no advisory locks "
    "(the SQLite claim row is covered by tests/jobs/test_runner.py)",
)
def test_a_runjob_process_started_while_another_connection_holds_the_lock_is_skipped(expiring):
    import psycopg

    from loyalty.jobs.runner import _advisory_key

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    other = psycopg.connect(**params, autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(4242, %s)", [_advisory_key("expire_points")])
        blocked = runjob("expire_points")
        output = blocked.communicate(timeout=120)[0]
    finally:
        other.close()

    assert blocked.returncode == 1, output
    assert "already running" in output
    assert JobRun.objects.get(job="expire_points").status == "skipped"
    assert LedgerEntry.objects.filter(kind="expire").count() == 0
    assert list(Member.objects.values_list("points_balance", flat=True)) == [30] * 5

    after = runjob("expire_points")
    assert after.wait(timeout=120) == 0
    assert LedgerEntry.objects.filter(kind="expire").count() == 5
    assert list(Member.objects.values_list("points_balance", flat=True)) == [0] * 5
    assert list(ledger_drift()) == []

"""Analytics and exports read from DATABASE_REPLICA_URL when it is set; writes never do."""

import subprocess
import sys

from loyalty.engine.db import ReplicaRouter, replica_reads
from members.models import Member
from tests.helpers import BASE_DIR, subprocess_env


def test_router_sends_opted_in_reads_to_the_replica(monkeypatch):
    import loyalty.engine.db

    monkeypatch.setattr(loyalty.engine.db, "replica_alias", lambda: "replica")
    router = ReplicaRouter()
    assert router.db_for_read(Member) is None
    with replica_reads():
        assert router.db_for_read(Member) == "replica"
        assert router.db_for_write(Member) == "default"
    assert router.db_for_read(Member) is None


def test_without_a_replica_everything_reads_the_primary():
    with replica_reads():
        assert ReplicaRouter().db_for_read(Member) is None


def test_replica_url_is_used_by_a_real_process():
    code = (
        "from loyalty.engine.db import replica_reads\n"
        "from members.models import Member\n"
        "print(Member.objects.all().db)\n"
        "with replica_reads():\n"
        "    print(Member.objects.all().db)\n"
    )
    env = subprocess_env(
        DATABASE_URL="sqlite:///" + str(BASE_DIR / "var" / "replica-check.sqlite3"),
        DATABASE_REPLICA_URL="sqlite:///" + str(BASE_DIR / "var" / "replica-check.sqlite3"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["default", "replica"]

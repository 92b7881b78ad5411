"""Settings come from the environment: a mistake stops the start with one clear line, and the
production settings pass Django's deployment checklist."""

import secrets
import subprocess
import sys

import pytest

from tests.helpers import BASE_DIR, subprocess_env


def manage(*args, tmp_path, **env):
    """Run ``manage.py`` as a deployment would, with its own VAR_DIR and no test database."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=subprocess_env(VAR_DIR=str(tmp_path / "var"), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DEBUG": "maybe"},
            "configuration error: DEBUG must be true or false, not 'maybe'",
        ),
        (
            {"DATABASE_URL": "mysql://x"},
            "configuration error: DATABASE_URL must start with postgres:// or sqlite://, "
            "not 'mysql'",
        ),
        (
            # Port 1 on this machine: nothing listens there.
            {"DATABASE_URL": "postgres://loyalty@127.0.0.1:1/loyalty"},
            'database unavailable: connection failed: connection to server at "127.0.0.1", '
            "port 1 failed: Connection refused (check DATABASE_URL)",
        ),
        (
            {"REDIS_URL": "http://127.0.0.1:6379/0"},
            "configuration error: REDIS_URL must start with redis:// or rediss://, "
            "not 'http://127.0.0.1:6379/0'",
        ),
    ],
    ids=["wrong-debug", "mysql-database-url", "unreachable-postgres", "malformed-redis-url"],
)
def test_a_wrong_setting_stops_migrate_with_one_clear_line(tmp_path, env, message):
    result = manage("migrate", "--noinput", tmp_path=tmp_path, **env)

    assert result.returncode == 1
    assert result.stderr == message + "\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_production_settings_pass_the_deployment_checklist_without_warnings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="loyalty.example.com",
        DEBUG=None,
        TESTING=None,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # Only the deliberate one (HSTS preload, see settings) is silenced.
    assert result.stdout == "System check identified no issues (1 silenced).\n"
    assert result.stderr == ""


def test_a_postgresql_url_bounds_lock_waits_and_turns_jit_off(monkeypatch):
    from loyalty.project.settings import database_from_url

    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "1500")
    monkeypatch.delenv("DB_JIT", raising=False)
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "false")
    url = "postgres://loyalty@db.example.com:5432/loyalty"

    options = database_from_url("DATABASE_URL", url)["OPTIONS"]["options"]
    assert options == "-c lock_timeout=1500 -c jit=off"
    monkeypatch.setenv("DB_JIT", "true")
    assert database_from_url("DATABASE_URL", url)["OPTIONS"]["options"] == "-c lock_timeout=1500"


def test_a_postgresql_url_binds_parameters_on_the_server_unless_told_not_to(monkeypatch):
    from loyalty.project.settings import database_from_url

    url = "postgres://loyalty@db.example.com:5432/loyalty"
    monkeypatch.delenv("DB_PREPARED_STATEMENTS", raising=False)
    options = database_from_url("DATABASE_URL", url)["OPTIONS"]
    assert options["server_side_binding"] is True
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", "false")
    options = database_from_url("DATABASE_URL", url)["OPTIONS"]
    assert "server_side_binding" not in options

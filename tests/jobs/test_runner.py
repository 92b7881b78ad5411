"""Job runs: recorded, locked against overlap, runnable by command, by the beat and by a button."""

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from loyalty.jobs import JOBS
from loyalty.jobs.runner import run_job
from loyalty.models import JobLock, JobRun
from members.models import Member
from tests.jobs.conftest import at


def test_runjob_runs_a_job_as_of_a_moment_and_records_the_run(enrol, capsys):
    member = enrol(birth_date=date(1990, 6, 15))

    call_command("runjob", "birthday_offers", "--as-of", "2025-06-15T09:00:00+03:00")

    out = capsys.readouterr().out
    assert "birthday_offers as of 2025-06-15T09:00:00+03:00: 1 rows" in out
    run = JobRun.objects.get()
    assert (run.job, run.status, run.trigger, run.rows) == ("birthday_offers", "done", "command", 1)
    assert run.as_of == at("2025-06-15 09:00")
    assert run.finished_at >= run.started_at
    assert Member.objects.get(pk=member.pk).points_balance == 200


def test_runjob_reads_a_time_without_zone_in_the_program_time_zone(enrol):
    call_command("runjob", "expire_points", "--as-of", "2025-06-15T09:00")
    assert JobRun.objects.get().as_of == at("2025-06-15 09:00")


def test_runjob_refuses_a_malformed_time(db):
    with pytest.raises(CommandError, match="ISO time"):
        call_command("runjob", "expire_points", "--as-of", "yesterday")


def broken_job(**kwargs):
    raise ValueError("disk full")


def test_a_failed_run_is_recorded_with_its_error(db, monkeypatch):
    from loyalty.jobs import Job

    monkeypatch.setitem(
        JOBS, "expire_points", Job("expire_points", "tests.jobs.test_runner.broken_job", "")
    )

    with pytest.raises(ValueError):
        run_job("expire_points", as_of=at("2025-01-01 00:00"))

    run = JobRun.objects.get()
    assert (run.status, run.error) == ("failed", "ValueError: disk full")
    assert run.finished_at is not None


def test_a_second_run_of_a_job_while_one_holds_the_lock_is_skipped(db, enrol):
    enrol(birth_date=date(1990, 6, 15))
    if connection.vendor == "postgresql":
        import psycopg

        from loyalty.jobs.runner import _advisory_key

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        other = psycopg.connect(**params, autocommit=True)
        other.execute("SELECT pg_advisory_lock(4242, %s)", [_advisory_key("birthday_offers")])
        try:
            skipped = run_job("birthday_offers", as_of=at("2025-06-15 09:00"))
        finally:
            other.close()
    else:
        holder = JobRun.objects.create(
            job="birthday_offers", as_of=timezone.now(), started_at=timezone.now()
        )
        JobLock.objects.create(job="birthday_offers", run=holder, claimed_at=timezone.now())
        skipped = run_job("birthday_offers", as_of=at("2025-06-15 09:00"))
        JobLock.objects.filter(job="birthday_offers").update(run=None)  # the holder finishes

    assert (skipped.status, skipped.rows) == ("skipped", 0)
    assert Member.objects.get().points_balance == 0
    assert run_job("birthday_offers", as_of=at("2025-06-15 09:00")).rows == 1


@pytest.mark.skipif("connection.vendor == 'postgresql'")
def test_a_claim_left_by_a_dead_process_is_taken_over(db):
    dead = JobRun.objects.create(
        job="expire_points", as_of=timezone.now(), started_at=timezone.now()
    )
    stale = timezone.now() - timedelta(seconds=settings.JOB_LOCK_STALE_SECONDS + 1)
    JobLock.objects.create(job="expire_points", run=dead, claimed_at=stale)

    assert run_job("expire_points").status == "done"
    assert JobLock.objects.get(job="expire_points").run is None


def test_every_job_is_on_the_beat_schedule():
    scheduled = {
        entry["args"][0]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "loyalty.jobs.tasks.run_job"
    }
    assert scheduled == set(JOBS)
    assert settings.CELERY_BEAT_SCHEDULE["deliver_messages"]["task"] == (
        "messaging.tasks.deliver_messages"
    )


def test_the_celery_task_runs_the_job_and_kicks_delivery(enrol, monkeypatch):
    from loyalty import tasks
    from messaging.tasks import deliver_messages

    kicked = []
    monkeypatch.setattr(deliver_messages, "delay", lambda: kicked.append(1))
    enrol(birth_date=date(1990, 6, 15))

    run_id = tasks.run_job("birthday_offers", as_of="2025-06-15T09:00:00+03:00")

    assert JobRun.objects.get(pk=run_id).trigger == "schedule"
    assert kicked == [1]


# --- the Jobs page ---------------------------------------------------------------------------


@pytest.mark.urls("tests.messaging.urls")
def test_jobs_page_lists_every_job_and_the_runs(client_as, enrol):
    run_job("expire_points", as_of=at("2025-01-01 00:00"))

    response = client_as("admin").get("/operations/jobs/")

    assert response.status_code == 200
    text = response.content.decode()
    for name in JOBS:
        assert f'data-job="{name}"' in text
    assert text.count("<code>expire_points</code>") == 2  # the job row and its run


@pytest.mark.urls("tests.messaging.urls")
@pytest.mark.parametrize("persona", ["manager", "support", "marketer"])
def test_jobs_page_needs_the_run_jobs_permission(client_as, persona):
    assert client_as(persona).get("/operations/jobs/").status_code == 403
    assert client_as(persona).post("/operations/jobs/expire_points/run/").status_code == 403


@pytest.mark.urls("tests.messaging.urls")
def test_run_now_button_starts_the_job_after_commit(
    client_as, enrol, monkeypatch, django_capture_on_commit_callbacks, admin_user_
):
    from loyalty import tasks
    from messaging.tasks import deliver_messages

    monkeypatch.setattr(tasks.run_job, "delay", lambda *a, **k: tasks.run_job(*a, **k))
    monkeypatch.setattr(deliver_messages, "delay", lambda: None)
    client = client_as("admin")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/operations/jobs/reevaluate_tiers/run/")

    assert response.status_code == 302
    run = JobRun.objects.get()
    assert (run.job, run.trigger, run.started_by, run.status) == (
        "reevaluate_tiers",
        "button",
        admin_user_,
        "done",
    )


def test_run_now_with_the_broker_down_says_the_job_did_not_start(
    transactional_db, client_as, admin_user_, broker_down
):
    client = client_as("admin")
    client.cookies["language"] = "en"

    response = client.post("/operations/jobs/reevaluate_tiers/run/", follow=True)

    assert response.redirect_chain == [("/operations/jobs/", 302)]
    assert [str(message) for message in response.context["messages"]] == [
        "The task queue is unreachable just now, so reevaluate_tiers did not start. It runs at "
        "its scheduled time once the queue is back, or press the button again then."
    ]
    assert JobRun.objects.count() == 0


@pytest.mark.urls("tests.messaging.urls")
def test_run_now_of_an_unknown_job_is_404(client_as):
    assert client_as("admin").post("/operations/jobs/nope/run/").status_code == 404

"""Benchmark a campaign send against Celery's own no-op rate on the same broker, and a Celery
worker's peak memory during the send and during the largest nightly job.

PostgreSQL and Redis only, on a throwaway database (its name must contain "bench") that holds
generated members (``generate_data``). A real worker (prefork, ``--concurrency`` processes,
prefetch 1, acks late: the production settings) is started on a queue of the run's own, then:

1. **no-op fan-out**: as many ``campaigns.tasks.noop`` messages as the send will have chunks,
   and separately one message per member for ``--per-member`` members: Celery's own cost per
   message, and what a send of one message per member would cost in broker overhead alone;
2. **campaign send**: a bonus-points campaign with a message, to ``--members`` active members
   in chunks of ``--chunk``, from the split into chunks to the last chunk done;
3. **largest job** (``--job``, default refresh_analytics) run by the worker, timed, with the
   worker's peak resident memory (VmHWM of the pool processes).

Prints a table and writes JSON (``--out``).
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, Segment
from campaigns.services import CHUNK_MEMBERS, start_send
from campaigns.tasks import enqueue_chunks, noop
from loyalty.models import JobRun, LedgerEntry
from loyalty.tasks import run_job
from messaging.models import Outbox


def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def peak_rss_mb(pids):
    """The largest high-water mark of resident memory among ``pids``, in MB."""
    marks = []
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        marks += [int(line.split()[1]) for line in text.splitlines() if line.startswith("VmHWM")]
    return round(max(marks) / 1024, 1) if marks else None


class Command(BaseCommand):
    help = (
        "PostgreSQL + Redis, on a database whose name contains 'bench': a campaign send to N "
        "members against Celery's no-op rate, and the worker's peak memory in the largest job."
    )

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=100_000)
        parser.add_argument("--chunk", type=int, default=None, help="members per message")
        parser.add_argument(
            "--per-member", type=int, default=20_000, help="no-op messages, one per member"
        )
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--job", default="refresh_analytics", help="'' to skip")
        parser.add_argument("--out", default=str(settings.BASE_DIR / "var/bench/celery.json"))

    def handle(self, *args, members, chunk, per_member, concurrency, job, out, **options):
        chunk = chunk or CHUNK_MEMBERS
        if connection.vendor != "postgresql" or "bench" not in connection.settings_dict["NAME"]:
            raise CommandError("bench_celery needs a PostgreSQL database named *bench*")
        if not settings.CELERY_BROKER_URL.startswith("redis"):
            raise CommandError("bench_celery needs REDIS_URL (the production broker)")
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        self.queue = f"bench-celery-{uuid.uuid4().hex[:8]}"
        results = {"members": members, "chunk": chunk, "concurrency": concurrency}
        worker = self.start_worker(concurrency)
        try:
            self.drain([noop.apply_async((0,), queue=self.queue)], 60)  # the pool is up
            messages = -(-members // chunk)
            results["noop_chunked"] = self.noop_rate(messages)
            results["noop_per_member"] = self.noop_rate(per_member)
            results["send"] = self.send(members, chunk)
            results["worker_peak_rss_mb_after_send"] = peak_rss_mb(children(worker.pid))
            if job:
                results["job"] = self.job(job)
                results["worker_peak_rss_mb_after_job"] = peak_rss_mb(children(worker.pid))
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
            self.redis.delete(self.queue)
        self.report(results)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2, default=str))
        self.stdout.write(f"written to {out}")

    def start_worker(self, concurrency):
        command = [
            sys.executable, "-m", "celery", "-A", "loyalty", "worker", "-Q", self.queue,
            "-c", str(concurrency), "--pool", "prefork", "-l", "warning",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="loyalty.project.settings")
        return subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)  # noqa: S603

    def pending(self):
        """Messages of our queue not yet acknowledged (waiting, or taken and running)."""
        waiting = self.redis.llen(self.queue)
        unacked = 0
        for _key, raw in self.redis.hscan_iter("unacked"):
            if self.queue.encode() in raw:
                unacked += 1
        return waiting + unacked

    def drain(self, _sent, timeout):
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise CommandError(f"{self.queue}: messages not done after {timeout} s")
            time.sleep(0.02)

    def noop_rate(self, count):
        started = time.perf_counter()
        for i in range(count):
            noop.apply_async((i,), queue=self.queue)
        sent = time.perf_counter() - started
        self.drain(None, 600)
        seconds = time.perf_counter() - started
        figures = {
            "messages": count,
            "enqueue_s": round(sent, 3),
            "seconds": round(seconds, 3),
            "messages_per_s": round(count / seconds, 1),
        }
        self.stdout.write(f"no-op x{count}: {figures}")
        return figures

    def send(self, members, chunk):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM members_member WHERE status = 'active' ORDER BY id "
                "OFFSET %s LIMIT 1",
                [members - 1],
            )
            row = cursor.fetchone()
            cursor.execute("SELECT min(id) FROM members_member WHERE status = 'active'")
            low = cursor.fetchone()[0]
        if row is None:
            raise CommandError(f"fewer than {members} active members: run generate_data")
        segment = Segment.objects.create(
            name=f"bench {members}", definition={"ids": [low, row[0] + 1]}
        )
        now = timezone.now()
        campaign = Campaign.objects.create(
            name=f"bench send {members}",
            segment=segment,
            kind=Campaign.Kind.BONUS_POINTS,
            points=50,
            points_expiry_days=30,
            subject_ru="Бонус",
            message_ru="Вам начислено 50 баллов",
            subject_en="Bonus",
            message_en="You have 50 bonus points",
            control_percent=10,
            status=Campaign.Status.SCHEDULED,
            scheduled_at=now,
        )
        started = time.perf_counter()
        chunk_ids = start_send(campaign_id=campaign.pk, now=now, chunk_members=chunk)
        split = time.perf_counter() - started
        enqueue_chunks(chunk_ids, queue=self.queue)
        while True:
            campaign.refresh_from_db(fields=["status", "done", "total"])
            if campaign.status == Campaign.Status.DONE:
                break
            if time.perf_counter() - started > 3600:
                raise CommandError("the send did not finish within an hour")
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        recipients = CampaignRecipient.objects.filter(campaign=campaign)
        test = recipients.filter(group=CampaignRecipient.Group.TEST).count()
        points = sum(
            LedgerEntry.objects.filter(
                kind="bonus", reason__endswith=f"(#{campaign.pk})"
            ).values_list("points", flat=True)
        )
        messages = Outbox.objects.filter(key__startswith=f"campaign:{campaign.pk}:").count()
        figures = {
            "campaign": campaign.pk,
            "members": campaign.total,
            "recipients": recipients.count(),
            "test_group": test,
            "points_credited": points,
            "points_expected": test * 50,
            "outbox_messages": messages,
            "chunks": len(chunk_ids),
            "split_s": round(split, 3),
            "seconds": round(seconds, 3),
            "members_per_s": round(campaign.total / seconds, 1),
            "messages_per_s": round(len(chunk_ids) / seconds, 2),
        }
        self.stdout.write(f"send: {figures}")
        return figures

    def job(self, name):
        before = JobRun.objects.filter(job=name).order_by("-pk").values_list("pk", flat=True)
        last = before.first() or 0
        started = time.perf_counter()
        run_job.apply_async((name,), queue=self.queue)
        # A job longer than the broker's visibility timeout is delivered again while it runs;
        # that second run finds the job's lock taken and is recorded as skipped: wait for the
        # run that did the work.
        while True:
            run = (
                JobRun.objects.filter(job=name, pk__gt=last)
                .exclude(status=JobRun.Status.SKIPPED)
                .order_by("pk")
                .first()
            )
            if run is not None and run.status != JobRun.Status.RUNNING:
                break
            if time.perf_counter() - started > 7200:
                raise CommandError(f"{name} did not finish within two hours")
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        figures = {
            "job": name,
            "status": run.status,
            "rows": run.rows,
            "seconds": round(seconds, 1),
        }
        self.stdout.write(f"job: {figures}")
        return figures

    def report(self, r):
        send, chunked, single = r["send"], r["noop_chunked"], r["noop_per_member"]
        overhead = send["chunks"] / chunked["messages_per_s"]
        per_member_m = 1_000_000 / single["messages_per_s"] / 60
        self.stdout.write("")
        self.stdout.write(
            f"campaign send: {send['members']} members in {send['chunks']} messages of "
            f"{r['chunk']}: {send['seconds']} s = {send['members_per_s']} members/s "
            f"({send['messages_per_s']} messages/s)"
        )
        self.stdout.write(
            f"celery no-op, same messages: {chunked['messages_per_s']} messages/s "
            f"(broker overhead {overhead:.2f} s = {overhead / send['seconds']:.1%} of the send)"
        )
        self.stdout.write(
            f"celery no-op, one message per member: {single['messages_per_s']} messages/s "
            f"= {per_member_m:.1f} min of overhead alone for 1,000,000 members"
        )
        self.stdout.write(
            f"points credited {send['points_credited']} (expected {send['points_expected']}), "
            f"messages {send['outbox_messages']}, recipients {send['recipients']}"
        )
        self.stdout.write(
            f"worker peak RSS after the send: {r['worker_peak_rss_mb_after_send']} MB"
        )
        if "job" in r:
            self.stdout.write(
                f"{r['job']['job']}: {r['job']['seconds']} s ({r['job']['status']}), worker peak "
                f"RSS {r['worker_peak_rss_mb_after_job']} MB"
            )

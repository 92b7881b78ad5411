"""A Celery worker killed with SIGKILL in the middle of a campaign send and of a CSV import: the
broker gives the task to the next worker and the work completes exactly once (issue 20, item 1).

The worker is stopped inside a transaction on purpose: the test holds a row lock that the task
needs (a chunk of the send, a member of the import), waits until the worker's backend waits for
it, and kills the worker's whole process group. Its transaction is rolled back by PostgreSQL; the
message, acknowledged only after the task (acks_late), comes back from Redis after the visibility
timeout (1 s here, 300 s by default; workers look for such messages every
CELERY_RESTORE_SECONDS, 1 s here, 10 s by default) to a second worker.
"""

import io

from django.core.files.base import ContentFile
from django.core.management import call_command

from campaigns.models import Campaign, CampaignChunk, CampaignRecipient
from campaigns.tasks import send_campaigns
from loyalty.engine.ledger import ledger_drift
from loyalty.models import LedgerEntry, Purchase
from members.imports import run_import
from members.models import ImportJob, Member
from members.tasks import run_import_job
from tests.campaigns.conftest import at
from tests.faults.conftest import RowLock, needs_row_locks

pytestmark = needs_row_locks

# Redis gives an unacknowledged message back after a second, and workers look every second.
FAST_REDELIVERY = {"CELERY_VISIBILITY_TIMEOUT": "1", "CELERY_RESTORE_SECONDS": "1"}


def killed_while_blocked(worker, lock):
    """Wait until the worker waits for ``lock``, then SIGKILL it."""
    worker.wait_for(lambda: lock.waiters() == 1, "the worker to wait for the row lock")
    worker.kill()


def test_a_worker_killed_in_the_middle_of_a_campaign_send_is_replaced_and_the_send_completes_once(
    private_redis, celery_on, celery_worker, many_members, make_campaign
):
    many_members(200)
    campaign = make_campaign(kind="bonus_points", points=25, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(
        status="scheduled", scheduled_at=at("2025-03-01 12:00")
    )
    env = {"REDIS_URL": private_redis.url, **FAST_REDELIVERY}
    celery_on(private_redis.url)
    first = celery_worker(env=env)
    queue = first.queues[0]
    send_campaigns(as_of=at("2025-03-01 12:00"), batch_size=50, queue=queue)
    chunks = list(CampaignChunk.objects.filter(campaign=campaign).order_by("low"))
    assert len(chunks) == 4

    with RowLock(CampaignChunk, chunks[1].pk) as lock:
        killed_while_blocked(first, lock)
        assert CampaignChunk.objects.filter(campaign=campaign, is_done=True).count() == 1
    second = celery_worker(queues=[queue], keep_messages=True, env=env)

    second.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == "done",
        "the second worker to finish the send",
    )
    campaign.refresh_from_db()
    assert (campaign.done, campaign.total) == (200, 200)
    assert CampaignChunk.objects.filter(campaign=campaign, is_done=True).count() == 4
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 200
    assert LedgerEntry.objects.filter(kind="bonus", points=25).count() == 200
    assert set(Member.objects.values_list("points_balance", flat=True)) == {25}
    assert list(ledger_drift()) == []
    call_command("check_ledger", stdout=io.StringIO())
    assert "send_chunk[" in second.log(last=10**6)


PURCHASES_HEADER = "external_id,store,occurred_at,amount,card_number\n"


def test_a_worker_killed_in_the_middle_of_a_csv_import_is_replaced_and_the_import_completes_once(
    private_redis, celery_on, celery_worker, many_members, admin_user_
):
    ids = many_members(100)
    cards = dict(Member.objects.values_list("pk", "card_number"))
    text = PURCHASES_HEADER + "".join(
        f"H-{number},MSK-01,2025-02-01T12:00:00+03:00,1000.00,{cards[pk]}\n"
        for number, pk in enumerate(ids, start=1)
    )
    job = ImportJob.objects.create(
        kind="purchases", earn_points=True, created_by=admin_user_, file=ContentFile(text, "h.csv")
    )
    env = {"REDIS_URL": private_redis.url, **FAST_REDELIVERY}
    celery_on(private_redis.url)
    first = celery_worker(env=env)
    queue = first.queues[0]

    with RowLock(Member, ids[50]) as lock:  # the 51st receipt's member
        run_import_job.apply_async((job.pk,), queue=queue)
        killed_while_blocked(first, lock)
        assert Purchase.objects.count() == 50
    second = celery_worker(queues=[queue], keep_messages=True, env=env)

    second.wait_for(
        lambda: ImportJob.objects.get(pk=job.pk).is_finished, "the second worker to finish"
    )
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.imported, job.error_count) == (
        "done",
        100,
        100,
        100,
        0,
    )
    assert Purchase.objects.count() == 100
    assert LedgerEntry.objects.filter(kind="earn", points=30).count() == 100
    assert set(Member.objects.values_list("points_balance", flat=True)) == {30}
    assert list(ledger_drift()) == []
    assert run_import(job).status == "done"  # run again: a finished job is left alone
    assert Purchase.objects.count() == 100

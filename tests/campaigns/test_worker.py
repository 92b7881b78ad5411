"""A campaign send through a real Celery worker process and the real broker."""

from campaigns.models import Campaign, CampaignChunk, CampaignRecipient
from campaigns.tasks import send_campaigns
from loyalty.engine.ledger import ledger_drift
from loyalty.models import LedgerEntry
from tests.campaigns.conftest import at


def test_a_worker_sends_every_chunk_of_a_due_campaign(celery_worker, many_members, make_campaign):
    many_members(250)
    campaign = make_campaign(kind="bonus_points", points=25, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(
        status="scheduled", scheduled_at=at("2025-03-01 12:00")
    )
    worker = celery_worker()

    started = send_campaigns(as_of=at("2025-03-01 12:00"), batch_size=100, queue=worker.queues[0])

    assert started == 1
    worker.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == "done",
        "the worker to finish the send",
        seconds=60,
    )
    campaign.refresh_from_db()
    assert (campaign.done, campaign.total) == (250, 250)
    assert CampaignChunk.objects.filter(campaign=campaign, is_done=True).count() == 3
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 250
    assert LedgerEntry.objects.filter(kind="bonus", points=25).count() == 250
    assert list(ledger_drift()) == []
    assert worker.log().count("Task campaigns.tasks.send_chunk[") >= 3

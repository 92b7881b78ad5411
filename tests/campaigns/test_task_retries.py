"""A campaign task that meets a busy member is retried by Celery, and the retry sends once."""

from campaigns import tasks
from campaigns.models import Campaign, CampaignRecipient
from loyalty.models import LedgerEntry
from messaging.models import Outbox
from tests.campaigns.conftest import at
from tests.retries import busy_once

NOW = at("2025-03-01 12:00")


def test_start_campaign_retries_a_busy_start_and_then_sends_once(
    many_members, make_campaign, eager_celery, no_drift, monkeypatch
):
    many_members(30)
    campaign = make_campaign(kind="bonus_points", points=20, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    calls = busy_once(monkeypatch, tasks, "start_send")

    result = tasks.start_campaign.apply((campaign.pk, NOW.isoformat()))

    assert result.successful()
    assert calls == ["busy", "ran"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.done, campaign.total) == ("done", 30, 30)
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 30
    assert LedgerEntry.objects.filter(kind="bonus").count() == 30
    no_drift()


def test_send_chunk_retries_a_busy_chunk_and_then_sends_it_once(
    many_members, make_campaign, eager_celery, monkeypatch
):
    many_members(30)
    campaign = make_campaign(control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    from campaigns.services import start_send

    (chunk_id,) = start_send(campaign_id=campaign.pk, now=NOW)
    calls = busy_once(monkeypatch, tasks, "run_chunk")

    result = tasks.send_chunk.apply((chunk_id,))

    assert result.successful()
    assert calls == ["busy", "ran"]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.done) == ("done", 30)
    assert Outbox.objects.filter(purpose="campaign").count() == 30

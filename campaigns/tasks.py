"""Celery tasks of a campaign send, and what hands a send to them: start it, then one message
per chunk of members (the rules of a send are in campaigns/services.py, which never imports
this module)."""

import logging

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.models import CampaignChunk
from campaigns.services import (
    CHUNK_MEMBERS,
    chunks_to_resend,
    create_run,
    due_campaigns,
    run_chunk,
    running_win_backs,
    start_send,
)
from loyalty.engine import progress
from loyalty.web.taskqueue import RETRY_WHEN_BUSY

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, name="campaigns.tasks.start_campaign", **RETRY_WHEN_BUSY)
def start_campaign(campaign_id, now):
    """Split a campaign that is due into chunks and send them (safe to run twice: only the run
    that moves it from scheduled to sending makes chunks)."""
    enqueue_chunks(start_send(campaign_id=campaign_id, now=parse_datetime(now)))


@shared_task(acks_late=True, name="campaigns.tasks.send_chunk", **RETRY_WHEN_BUSY)
def send_chunk(chunk_id):
    """One chunk of a send (safe to run twice: a done chunk does nothing)."""
    run_chunk(chunk_id)


@shared_task(name="campaigns.tasks.noop")
def noop(chunk_id=None):
    """Does nothing: the benchmark measures Celery's own cost per message with it."""
    return None


def enqueue_chunks(chunk_ids, *, queue=None):
    """Send one Celery message per chunk (after the chunks are committed)."""
    if not chunk_ids:
        return
    CampaignChunk.objects.filter(pk__in=chunk_ids).update(enqueued_at=timezone.now())
    options = {"queue": queue} if queue else {}
    for chunk_id in chunk_ids:
        send_chunk.apply_async((chunk_id,), **options)


def start_soon(campaign_id, now):
    """Ask a worker to start the send of a campaign scheduled for ``now`` (the page's "Send
    now", once committed: splitting a large segment into chunks takes a second or two). If the
    broker cannot take the message, nothing is lost: the send_campaigns job (every minute)
    starts it."""
    try:
        start_campaign.delay(campaign_id, now.isoformat())
    except Exception:  # the broker is down: the job will start it
        logger.warning("campaign %s: start left to send_campaigns", campaign_id, exc_info=True)


def send_campaigns(*, as_of, run=None, batch_size=CHUNK_MEMBERS, queue=None):
    """Start every scheduled campaign that is due, fanned out in chunks of ``batch_size``
    members; send again the chunks of running sends that were sent long ago and are not done
    (an interrupted send is finished by the next run)."""
    started = 0
    for campaign_id in due_campaigns(as_of):
        chunk_ids = start_send(campaign_id=campaign_id, now=as_of, chunk_members=batch_size)
        enqueue_chunks(chunk_ids, queue=queue)
        started += 1
        progress.checkpoint(run, len(chunk_ids), campaigns=1, chunks=len(chunk_ids))
    stale = chunks_to_resend()
    if stale:
        enqueue_chunks(stale, queue=queue)
        progress.checkpoint(run, len(stale), resent_chunks=len(stale))
    return started


def win_back(*, as_of, run=None, batch_size=CHUNK_MEMBERS, queue=None):
    """The day's run of every running win-back, made once (``create_run``) and sent in chunks
    as any campaign. Safe to run twice: a day has one run, and only the first start of a run
    makes chunks; a run made but not started (an interrupted job) is started by the next run
    of this job or by send_campaigns."""
    started = 0
    for win_back_id in running_win_backs(as_of):
        run_id = create_run(win_back_id=win_back_id, now=as_of)
        if run_id is None:
            continue
        chunk_ids = start_send(campaign_id=run_id, now=as_of, chunk_members=batch_size)
        enqueue_chunks(chunk_ids, queue=queue)
        started += 1
        progress.checkpoint(run, len(chunk_ids), campaigns=1, chunks=len(chunk_ids))
    return started

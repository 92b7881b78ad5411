"""Celery tasks of a campaign send: start it, then one message per chunk of members."""

from celery import shared_task
from django.utils.dateparse import parse_datetime


@shared_task(acks_late=True, name="campaigns.tasks.start_campaign")
def start_campaign(campaign_id, now):
    """Split a campaign that is due into chunks and send them (safe to run twice: only the run
    that moves it from scheduled to sending makes chunks)."""
    from campaigns.services import enqueue_chunks, start_send

    enqueue_chunks(start_send(campaign_id=campaign_id, now=parse_datetime(now)))


@shared_task(acks_late=True, name="campaigns.tasks.send_chunk")
def send_chunk(chunk_id):
    """One chunk of a send (safe to run twice: a done chunk does nothing)."""
    from campaigns.services import run_chunk

    run_chunk(chunk_id)


@shared_task(name="campaigns.tasks.noop")
def noop(chunk_id=None):
    """Does nothing: the benchmark measures Celery's own cost per message with it."""
    return None

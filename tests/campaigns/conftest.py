"""Fixtures for campaign tests: members by enrolment, purchases by the purchase service."""

import io
import itertools
from decimal import Decimal

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, Segment
from campaigns.services import CHUNK_MEMBERS, run_chunk, start_send
from loyalty.celery import app as celery_app
from loyalty.engine.ledger import ledger_drift
from loyalty.engine.purchases import record_purchase
from loyalty.models import Tier
from members.models import Member
from members.services import enrol_member
from tests.jobs.conftest import at  # noqa: F401 (the campaign tests import it from here)

_phones = itertools.count(1)
_receipts = itertools.count(1)


@pytest.fixture
def enrol(stores):
    def make(*, consent=True, store="MSK-01", when="2024-01-01 10:00", **fields):
        moment = at(when)
        return enrol_member(
            phone=f"+7914{next(_phones):07d}",
            marketing_consent=consent,
            store=stores[store],
            now=moment,
            enrolled_at=moment,
            **fields,
        )

    return make


@pytest.fixture
def buy(stores):
    def purchase(member, amount, when, *, store="MSK-01", redeem=0):
        moment = at(when) if isinstance(when, str) else when
        return record_purchase(
            store=stores[store],
            external_id=f"K-{next(_receipts)}",
            card_number=member.card_number,
            amount=Decimal(amount),
            occurred_at=moment,
            redeem_points=redeem,
            now=moment,
        ).body

    return purchase


@pytest.fixture
def make_campaign(db):
    def make(definition=None, **fields):
        segment = Segment.objects.create(name="Everyone", definition=definition or {})
        values = {"name": "Spring", "kind": Campaign.Kind.MESSAGE, "message_ru": "Привет"}
        values.update(fields)
        return Campaign.objects.create(segment=segment, **values)

    return make


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


_bulk = itertools.count(1)


@pytest.fixture
def many_members(stores):
    """Plain member rows in bulk (no purchases, no points): ``many_members(2500)`` returns their
    ids in order. For sends that must be large; members that buy are made with ``enrol``."""

    def make(count, *, consent=True, store="MSK-01", language="ru", email=True):
        bronze = Tier.objects.order_by("threshold").first()
        numbers = [next(_bulk) for _ in range(count)]
        Member.objects.bulk_create(
            [
                Member(
                    card_number=f"9{number:012d}",
                    phone=f"+7916{number:07d}",
                    referral_code=f"BULK{number:08d}",
                    email=f"m{number}@example.com" if email else "",
                    language=language,
                    marketing_consent=consent,
                    consent_at=at("2024-01-01 10:00") if consent else None,
                    tier=bronze,
                    enrolled_at=at("2024-01-01 10:00"),
                    enrolled_store=stores[store],
                )
                for number in numbers
            ],
            batch_size=1000,
        )
        cards = [f"9{number:012d}" for number in numbers]
        return list(
            Member.objects.filter(card_number__in=cards).order_by("id").values_list("id", flat=True)
        )

    return make


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Send a campaign as the job and its workers do, in this process: claim it, split it into
    chunks, run every chunk. Returns the chunk ids."""

    def go(campaign, *, now=None, chunk_members=CHUNK_MEMBERS):
        now = now or at("2025-03-01 12:00")
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.SCHEDULED, scheduled_at=now
        )
        with django_capture_on_commit_callbacks(execute=True):
            chunk_ids = start_send(campaign_id=campaign.pk, now=now, chunk_members=chunk_members)
        for chunk_id in chunk_ids:
            run_chunk(chunk_id)
        campaign.refresh_from_db()
        return chunk_ids

    return go


@pytest.fixture
def no_drift():
    """Assert the ledger invariant of SPEC section 3 for every member."""

    def check():
        assert list(ledger_drift()) == []
        call_command("check_ledger", stdout=io.StringIO())

    return check

"""Campaign sends: chunks, recipients, the control group, what the test group gets, and safety
against re-runs, crashes and cancellation."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignChunk, CampaignRecipient
from campaigns.services import cancel_campaign, in_control_group, run_chunk, start_send
from loyalty.models import AuditLog, Coupon, JobRun, LedgerEntry, PointsLot
from messaging.models import Message, Outbox
from messaging.services import deliver_due
from tests.campaigns.conftest import at

NOW = at("2025-03-01 12:00")


def footprint(campaign):
    """Everything a send writes, counted."""
    return {
        "recipients": CampaignRecipient.objects.filter(campaign=campaign).count(),
        "entries": LedgerEntry.objects.filter(kind="bonus").count(),
        "lots": PointsLot.objects.count(),
        "coupons": Coupon.objects.count(),
        "outbox": Outbox.objects.filter(purpose="campaign").count(),
    }


# --- Chunks, recipients, control group ---


def test_a_send_to_2500_members_goes_out_in_3_chunks_of_at_most_1000(
    many_members, make_campaign, send
):
    ids = many_members(2500)
    campaign = make_campaign()

    chunk_ids = send(campaign, chunk_members=1000)

    chunks = list(CampaignChunk.objects.filter(pk__in=chunk_ids).order_by("low"))
    assert [chunk.size for chunk in chunks] == [1000, 1000, 500]
    assert [chunk.low for chunk in chunks] == [ids[0], ids[1000], ids[2000]]
    assert chunks[-1].high == ids[-1] + 1
    assert all(chunk.is_done for chunk in chunks)
    assert (campaign.status, campaign.total, campaign.done, campaign.percent) == (
        "done",
        2500,
        2500,
        100,
    )
    assert set(CampaignRecipient.objects.values_list("member_id", flat=True)) == set(ids)


def test_the_control_group_is_decided_by_the_member_and_holds_about_its_share(
    many_members, make_campaign, send
):
    ids = many_members(2500)
    campaign = make_campaign(control_percent=10)

    send(campaign)

    control = set(
        CampaignRecipient.objects.filter(campaign=campaign, group="control").values_list(
            "member_id", flat=True
        )
    )
    assert control == {pk for pk in ids if in_control_group(campaign.pk, pk, 10)}
    assert 200 <= len(control) <= 300  # 10% of 2,500 is 250
    assert in_control_group(campaign.pk, ids[0], 10) == in_control_group(campaign.pk, ids[0], 10)


def test_a_segment_reaches_only_its_members(many_members, make_campaign, send, stores):
    many_members(30, store="MSK-01")
    many_members(20, store="SPB-01")
    campaign = make_campaign({"enrolled_stores": [stores["SPB-01"].pk]})

    send(campaign)

    assert campaign.total == 20
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 20


def test_an_empty_segment_finishes_at_once_with_nobody(make_campaign, send, stores):
    campaign = make_campaign({"enrolled_stores": [stores["SPB-01"].pk]})

    assert send(campaign) == []
    assert (campaign.status, campaign.total, campaign.percent) == ("done", 0, 100)


def test_changing_the_segment_during_a_send_does_not_change_who_it_reaches(
    many_members, make_campaign, stores
):
    many_members(10, store="MSK-01")
    many_members(5, store="SPB-01")
    campaign = make_campaign({"enrolled_stores": [stores["MSK-01"].pk]})
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    chunk_ids = start_send(campaign_id=campaign.pk, now=NOW, chunk_members=1000)

    campaign.segment.definition = {"enrolled_stores": [stores["SPB-01"].pk]}
    campaign.segment.save()
    run_chunk(chunk_ids[0])

    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 10


def test_members_enrolled_during_a_send_are_not_swept_into_its_last_chunk(
    many_members, make_campaign
):
    many_members(10)
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    (chunk_id,) = start_send(campaign_id=campaign.pk, now=NOW)

    many_members(3)
    run_chunk(chunk_id)

    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 10


# --- What the test group gets ---


def test_bonus_points_go_to_the_test_group_through_the_ledger(
    many_members, make_campaign, send, no_drift
):
    ids = many_members(300)
    campaign = make_campaign(
        kind="bonus_points", points=150, points_expiry_days=30, control_percent=20
    )

    send(campaign, chunk_members=100)

    test = [pk for pk in ids if not in_control_group(campaign.pk, pk, 20)]
    entries = LedgerEntry.objects.filter(kind="bonus")
    assert entries.count() == len(test)
    assert set(entries.values_list("member_id", flat=True)) == set(test)
    assert set(entries.values_list("points", flat=True)) == {150}
    assert set(entries.values_list("reason", flat=True)) == {f"Spring (#{campaign.pk})"}
    lot = PointsLot.objects.get(member_id=test[0])
    assert (lot.points, lot.remaining, lot.expires_at) == (150, 150, NOW + timedelta(days=30))
    no_drift()


def test_bonus_points_first_repay_a_members_debt(enrol, buy, stores, make_campaign, send, no_drift):
    from loyalty.engine.purchases import refund_purchase

    member = enrol()
    receipt = buy(member, "1000.00", "2025-02-01 10:00")  # earns 30
    buy(member, "100.00", "2025-02-01 11:00", redeem=30)  # spends them
    refund_purchase(
        store=stores["MSK-01"],
        external_id=receipt["external_id"],
        refund_id="R-1",
        amount=Decimal("1000.00"),
        now=at("2025-02-02 10:00"),
    )  # 30 reversed after they were spent, 2 earned since: a debt of 28
    member.refresh_from_db()
    assert (member.points_balance, member.points_debt) == (-28, 28)
    campaign = make_campaign(kind="bonus_points", points=100, control_percent=0)

    send(campaign)

    member.refresh_from_db()
    assert (member.points_balance, member.points_debt) == (72, 0)
    no_drift()


def test_each_test_member_gets_a_personal_coupon_redeemable_once_at_the_till(
    enrol, make_campaign, send, api
):
    member = enrol()
    campaign = make_campaign(
        kind="coupon",
        coupon_kind="fixed",
        coupon_value=Decimal("200.00"),
        coupon_valid_days=14,
        control_percent=0,
        message_ru="Ваш подарок",
    )
    now = timezone.now()

    send(campaign, now=now)

    coupon = Coupon.objects.get(member=member)
    assert (coupon.kind, coupon.value, coupon.max_uses) == ("fixed", Decimal("200.00"), 1)
    assert coupon.valid_until == now + timedelta(days=14)
    assert coupon.code in Outbox.objects.get(member=member).context["text"]
    body = {
        "card_number": member.card_number,
        "amount": "1000.00",
        "occurred_at": now.isoformat(),
        "coupon_code": coupon.code,
    }
    first = api.post("/api/v1/purchases", {**body, "external_id": "C-1"}, format="json")
    second = api.post("/api/v1/purchases", {**body, "external_id": "C-2"}, format="json")

    assert first.status_code == 201, first.json()
    assert first.json()["discount_amount"] == "200.00"
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "coupon_not_applicable"


def test_another_member_cannot_use_a_personal_coupon(enrol, make_campaign, send, api):
    owner, other = enrol(), enrol()
    campaign = make_campaign(
        {"ids": [owner.pk, owner.pk + 1]},
        kind="coupon",
        coupon_kind="percent",
        coupon_value=Decimal("10"),
        control_percent=0,
    )
    send(campaign, now=timezone.now())
    code = Coupon.objects.get(member=owner).code

    response = api.post(
        "/api/v1/purchases",
        {
            "external_id": "C-9",
            "card_number": other.card_number,
            "amount": "1000.00",
            "occurred_at": timezone.now().isoformat(),
            "coupon_code": code,
        },
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "coupon_not_applicable"


def test_the_test_group_gets_a_message_in_its_language_and_consent_is_applied_by_delivery(
    enrol, make_campaign, send
):
    russian = enrol(email="ru@example.com", consent=True)
    english = enrol(email="en@example.com", consent=True, language="en")
    no_consent = enrol(email="no@example.com", consent=False)
    campaign = make_campaign(
        control_percent=0,
        subject_ru="Весна",
        message_ru="Скидки весны",
        subject_en="Spring",
        message_en="Spring sale",
    )

    send(campaign)

    texts = dict(Outbox.objects.values_list("member_id", "context__text"))
    assert texts == {
        russian.pk: "Скидки весны",
        english.pk: "Spring sale",
        no_consent.pk: "Скидки весны",
    }
    deliver_due(now=at("2025-03-01 12:00"))
    sent = dict(Message.objects.values_list("member_id", "status"))
    assert sent == {russian.pk: "sent", english.pk: "sent", no_consent.pk: "suppressed"}
    assert Message.objects.get(member=no_consent).reason == "no_consent"


def test_the_control_group_gets_nothing(many_members, make_campaign, send):
    ids = many_members(200)
    campaign = make_campaign(kind="bonus_points", points=50, control_percent=50)

    send(campaign)

    control = [pk for pk in ids if in_control_group(campaign.pk, pk, 50)]
    assert CampaignRecipient.objects.filter(group="control").count() == len(control)
    assert not LedgerEntry.objects.filter(member_id__in=control).exists()
    assert not Outbox.objects.filter(member_id__in=control).exists()


# --- Safe to run twice, to crash, to cancel ---


def test_running_a_chunk_twice_changes_nothing(many_members, make_campaign, send, no_drift):
    many_members(150)
    campaign = make_campaign(
        kind="coupon", coupon_kind="percent", coupon_value=Decimal("5"), control_percent=10
    )
    chunk_ids = send(campaign, chunk_members=100)
    before = footprint(campaign)

    assert [run_chunk(chunk_id) for chunk_id in chunk_ids] == [0, 0]
    # Even a chunk marked undone again (a lost acknowledgement) adds nothing.
    CampaignChunk.objects.filter(pk__in=chunk_ids).update(is_done=False)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", done=0)
    assert [run_chunk(chunk_id) for chunk_id in chunk_ids] == [0, 0]

    assert footprint(campaign) == before
    no_drift()


def test_a_chunk_that_crashes_writes_nothing_and_its_rerun_does_it_all(
    many_members, make_campaign, monkeypatch, no_drift
):
    many_members(120)
    campaign = make_campaign(kind="bonus_points", points=10, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    (chunk_id,) = start_send(campaign_id=campaign.pk, now=NOW)
    real = services._offer

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("worker died")

    monkeypatch.setattr(services, "_offer", crash)
    with pytest.raises(RuntimeError):
        run_chunk(chunk_id)
    assert footprint(campaign) == {
        "recipients": 0,
        "entries": 0,
        "lots": 0,
        "coupons": 0,
        "outbox": 0,
    }
    monkeypatch.undo()

    assert run_chunk(chunk_id) == 120
    assert footprint(campaign) == {
        "recipients": 120,
        "entries": 120,
        "lots": 120,
        "coupons": 0,
        "outbox": 120,
    }
    no_drift()


def test_cancelling_mid_send_stops_the_chunks_not_yet_done(many_members, make_campaign, marketer):
    many_members(250)
    campaign = make_campaign(kind="bonus_points", points=10, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    first, *rest = start_send(campaign_id=campaign.pk, now=NOW, chunk_members=100)
    run_chunk(first)

    cancel_campaign(campaign_id=campaign.pk, staff=marketer)

    assert [run_chunk(chunk_id) for chunk_id in rest] == [0, 0]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.done, campaign.total) == ("cancelled", 100, 250)
    assert CampaignRecipient.objects.count() == 100
    assert LedgerEntry.objects.filter(kind="bonus").count() == 100
    entry = AuditLog.objects.get(action="campaign.cancel")
    assert (entry.actor, entry.before, entry.after) == (
        marketer,
        {"status": "sending"},
        {"status": "cancelled", "done": 100, "total": 250},
    )


def test_a_sent_campaign_cannot_be_cancelled(many_members, make_campaign, send, marketer):
    from loyalty.engine.errors import LoyaltyError

    many_members(3)
    campaign = make_campaign()
    send(campaign)

    with pytest.raises(LoyaltyError) as error:
        cancel_campaign(campaign_id=campaign.pk, staff=marketer)
    assert error.value.code == "campaign_not_editable"


# --- The send_campaigns job ---


def runjob(as_of, **options):
    out = io.StringIO()
    call_command("runjob", "send_campaigns", "--as-of", as_of, stdout=out, **options)
    return out.getvalue()


def test_a_scheduled_campaign_starts_only_when_it_is_due(
    many_members, make_campaign, eager_celery, no_drift
):
    many_members(250)
    campaign = make_campaign(kind="bonus_points", points=20, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(
        status="scheduled", scheduled_at=at("2025-03-01 12:00")
    )

    runjob("2025-03-01T11:59:00+03:00", batch_size=100)
    campaign.refresh_from_db()
    assert (campaign.status, CampaignRecipient.objects.count()) == ("scheduled", 0)

    runjob("2025-03-01T12:00:00+03:00", batch_size=100)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.done, campaign.total) == ("done", 250, 250)
    assert CampaignChunk.objects.filter(campaign=campaign).count() == 3
    assert LedgerEntry.objects.filter(kind="bonus").count() == 250
    run = JobRun.objects.filter(job="send_campaigns").latest("id")
    assert run.counts == {"campaigns": 1, "chunks": 3}
    no_drift()


def test_running_the_job_twice_changes_nothing(many_members, make_campaign, eager_celery):
    many_members(150)
    campaign = make_campaign(kind="bonus_points", points=20, control_percent=10)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    runjob("2025-03-01T12:00:00+03:00")
    before = footprint(campaign)

    runjob("2025-03-01T12:00:00+03:00")
    runjob("2025-03-01T12:05:00+03:00")

    assert footprint(campaign) == before
    assert before["recipients"] == 150
    assert CampaignChunk.objects.count() == 1


def test_the_job_sends_again_chunks_whose_messages_were_lost(
    many_members, make_campaign, eager_celery
):
    many_members(250)
    campaign = make_campaign(kind="bonus_points", points=20, control_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    chunk_ids = start_send(campaign_id=campaign.pk, now=NOW, chunk_members=100)
    # Sent 11 minutes ago, never done: the broker lost them (or the worker died).
    CampaignChunk.objects.filter(pk__in=chunk_ids).update(
        enqueued_at=timezone.now() - timedelta(minutes=11)
    )
    run_chunk(chunk_ids[0])

    output = runjob(timezone.now().isoformat())

    campaign.refresh_from_db()
    assert (campaign.status, campaign.done) == ("done", 250)
    assert LedgerEntry.objects.filter(kind="bonus").count() == 250
    assert "resent_chunks 2" in output


def test_the_job_leaves_alone_chunks_sent_a_moment_ago(many_members, make_campaign):
    many_members(150)
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled", scheduled_at=NOW)
    chunk_ids = start_send(campaign_id=campaign.pk, now=NOW, chunk_members=100)
    CampaignChunk.objects.filter(pk__in=chunk_ids).update(enqueued_at=timezone.now())

    output = runjob(timezone.now().isoformat())

    assert "resent_chunks" not in output
    assert CampaignRecipient.objects.count() == 0


def test_send_now_from_the_page_sends_the_campaign_through_celery(
    client_as, many_members, make_campaign, eager_celery, django_capture_on_commit_callbacks
):
    many_members(120)
    campaign = make_campaign(kind="bonus_points", points=5, control_percent=0)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_as("marketer").post(f"/campaigns/{campaign.pk}/send/", {"action": "now"})

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.done, campaign.total) == ("done", 120, 120)
    assert AuditLog.objects.filter(action="campaign.send_now").count() == 1
    assert AuditLog.objects.filter(action="campaign.send").count() == 1


def test_a_coupon_campaign_without_a_message_still_tells_each_member_the_code(
    enrol, make_campaign, send
):
    english = enrol(language="en")
    campaign = make_campaign(
        kind="coupon",
        coupon_kind="percent",
        coupon_value=Decimal("10"),
        control_percent=0,
        message_ru="",
    )

    send(campaign)

    code = Coupon.objects.get(member=english).code
    assert Outbox.objects.get(member=english).context == {
        "subject": "Spring",
        "text": f"Your coupon code: {code}",
        "campaign": campaign.pk,
    }

"""Each webhook event is written in the transaction of the change that causes it: a change rolled
back leaves none, a job run twice writes none twice, and the till pays one INSERT at most."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from loyalty.engine import webhook_events
from surveys.models import ComplaintCategory
from surveys.services import open_complaint, resolve_complaint
from tests.jobs.conftest import at
from webhooks.models import Delivery, Event


def events():
    return list(Delivery.objects.order_by("id").values_list("event_type", flat=True))


def test_an_enrolment_purchase_and_refund_each_write_their_event(pos, subscribe):
    subscribe()
    card = pos.enrol()["card_number"]
    pos.buy(card, "100.00", external_id="H-1")
    pos.refund("H-1", "40.00", refund_id="F-1")
    assert events() == ["member.enrolled", "purchase.recorded", "purchase.refunded"]
    purchase, refund = Delivery.objects.order_by("id")[1:]
    assert purchase.event_key.endswith(":H-1")
    assert purchase.payload["card_number"] == card
    assert purchase.payload["amount"] == "100.00"
    assert purchase.payload["earned_points"] == 3
    assert refund.payload["refund_id"] == "F-1"
    assert refund.payload["amount"] == "40.00"
    assert refund.payload["reversed_points"] == 1


def test_a_purchase_with_lines_writes_its_event_too_and_one_that_moves_up_a_tier_writes_two(
    pos, subscribe
):
    subscribe(Event.PURCHASE_RECORDED, Event.TIER_CHANGED)
    card = pos.enrol()["card_number"]
    pos.buy(
        card,
        "100.00",
        lines=[{"sku": "A", "category": "food", "quantity": "1", "unit_price": "100.00"}],
    )
    pos.buy(card, "15000.00")  # crosses silver's threshold
    assert events() == ["purchase.recorded", "purchase.recorded", "tier.changed"]
    tier = Delivery.objects.get(event_type="tier.changed")
    assert (tier.payload["tier"], tier.payload["previous_tier"]) == ("silver", "bronze")


def test_a_plain_purchase_nobody_subscribed_to_costs_no_statement_and_one_subscribed_costs_one(
    pos, subscribe
):
    card = pos.enrol()["card_number"]
    pos.buy(card, "100.00")  # warms the per-process rules cache
    with CaptureQueriesContext(connection) as unsubscribed:
        pos.buy(card, "100.00")
    subscribe(Event.PURCHASE_RECORDED)
    pos.buy(card, "100.00")  # reads the subscriptions again, once
    with CaptureQueriesContext(connection) as subscribed:
        pos.buy(card, "100.00")
    assert len(subscribed.captured_queries) == len(unsubscribed.captured_queries) + 1
    assert subscribed.captured_queries[-2]["sql"].startswith("INSERT INTO webhooks_delivery")
    assert Delivery.objects.count() == 2


def test_a_change_rolled_back_leaves_no_event(db, subscribe):
    subscribe(Event.MEMBER_ENROLLED)
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_events.record(Event.MEMBER_ENROLLED, event=1, data={"member_id": 1})
        assert Delivery.objects.count() == 1
        raise RuntimeError("the change fails after its event")
    assert Delivery.objects.count() == 0


def test_an_event_written_twice_is_delivered_once_per_subscription(db, subscribe, receiver):
    subscribe(Event.MEMBER_ENROLLED)
    subscribe(Event.MEMBER_ENROLLED, url=receiver.url + "/second")
    assert webhook_events.record(Event.MEMBER_ENROLLED, event=1, data={}) == 2
    assert webhook_events.record(Event.MEMBER_ENROLLED, event=1, data={}) == 0
    assert Delivery.objects.count() == 2


def test_an_unknown_event_is_refused(db):
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhook_events.record("member.teleported", event=1, data={})


def test_the_nightly_tier_job_writes_one_event_per_member_it_moves(
    run, enrol, buy, subscribe, admin_user_
):
    member = enrol()
    buy(member, "15000.00", at("2024-03-01 10:00"))  # silver at once
    subscribe(Event.TIER_CHANGED)
    run("reevaluate_tiers", at("2025-03-01 10:00"))  # falls below: grace starts, no change
    assert events() == []
    run("reevaluate_tiers", at("2025-03-31 10:00"))  # grace over: down to bronze
    run("reevaluate_tiers", at("2025-04-01 10:00"))  # nothing more
    [event] = Delivery.objects.all()
    assert event.payload["card_number"] == member.card_number
    assert event.payload["tier"] == "bronze"


def test_the_expiry_reminder_job_writes_one_points_expiring_event_per_member_once(
    run, enrol, buy, subscribe
):
    member = enrol()
    buy(member, "1000.00", at("2024-03-01 10:00"))  # 30 points, expire 2025-03-01 10:00
    subscribe(Event.POINTS_EXPIRING)
    run("expiry_reminders", at("2025-02-15 10:00"))
    run("expiry_reminders", at("2025-02-16 10:00"))
    [event] = Delivery.objects.all()
    assert event.event_type == "points.expiring"
    assert (event.payload["card_number"], event.payload["points"]) == (member.card_number, 30)


def test_opening_a_complaint_and_compensating_it_with_a_coupon_write_their_events(
    surveys, member, support, subscribe
):
    subscribe(Event.COMPLAINT_OPENED, Event.COUPON_ISSUED)
    case = open_complaint(
        member=member,
        category=ComplaintCategory.objects.get(code="service"),
        subject="Долго ждали",
        source="phone",
        store=member.enrolled_store,
        staff=support,
    )
    resolve_complaint(complaint_id=case.pk, staff=support, resolution="Sorry", coupon_amount=300)
    opened, coupon = Delivery.objects.order_by("id")
    assert opened.event_key == f"complaint.opened:{case.pk}"
    assert (opened.payload["category"], opened.payload["store"]) == ("service", "MSK-01")
    assert coupon.event_type == "coupon.issued"
    assert (coupon.payload["card_number"], coupon.payload["value"]) == (
        member.card_number,
        "300.00",
    )


def test_an_import_writes_one_enrolment_event_per_member_in_one_statement(
    stores, admin_user_, subscribe
):
    from members.services import enrol_members
    from tests.backoffice.test_consent_history import import_row

    subscribe(Event.MEMBER_ENROLLED)
    with CaptureQueriesContext(connection) as counted:
        members = enrol_members(
            rows=[import_row(f"+7912000003{index}", False) for index in range(3)],
            staff=admin_user_,
        )
    inserts = [q for q in counted.captured_queries if "INTO webhooks_delivery" in q["sql"]]
    assert len(inserts) == 1
    assert sorted(Delivery.objects.values_list("event_key", flat=True)) == sorted(
        f"member.enrolled:{member.pk}" for member in members
    )
    assert {d.payload["card_number"] for d in Delivery.objects.all()} == {
        member.card_number for member in members
    }

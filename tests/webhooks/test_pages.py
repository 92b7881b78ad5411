"""The webhook pages: subscriptions, the secret shown once, the delivery log and resend."""

from django.urls import reverse
from django.utils import timezone

from loyalty.engine.apikeys import shared_redis
from loyalty.models import AuditLog
from webhooks.models import Delivery, Event, Subscription


def make_deliveries(subscription, count, *, status="pending"):
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            subscription=subscription,
            event_type=Event.MEMBER_ENROLLED,
            event_key=f"member.enrolled:{number}",
            payload={"member_id": number},
            status=status,
            next_attempt_at=now,
            created_at=now,
        )
        for number in range(count)
    )


def test_the_administrator_subscribes_a_url_and_sees_its_secret_once(client_as):
    client = client_as("admin")
    response = client.post(
        reverse("webhooks:subscription-create"),
        {
            "url": "https://crm.example.com/hooks",
            "description": "CRM",
            "events": ["purchase.recorded", "member.enrolled"],
            "is_active": "on",
        },
    )
    subscription = Subscription.objects.get()
    assert response.status_code == 200
    assert subscription.secret in response.content.decode()
    assert subscription.events == ["member.enrolled", "purchase.recorded"]
    assert AuditLog.objects.filter(action="webhook.create").count() == 1
    edit = client.get(reverse("webhooks:subscription-edit", args=[subscription.pk]))
    assert subscription.secret not in edit.content.decode()
    listing = client.get(reverse("webhooks:subscription-list"))
    assert subscription.secret not in listing.content.decode()


def test_a_subscription_needs_an_event_and_an_http_address(client_as):
    response = client_as("admin").post(
        reverse("webhooks:subscription-create"), {"url": "ftp://example.com/x", "events": []}
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"url", "events"}
    assert Subscription.objects.count() == 0


def test_rotating_the_secret_replaces_it_and_shows_the_new_one(client_as):
    subscription = Subscription.objects.create(url="https://a.example/h", events=["tier.changed"])
    old = subscription.secret
    response = client_as("admin").post(
        reverse("webhooks:subscription-rotate", args=[subscription.pk])
    )
    subscription.refresh_from_db()
    assert subscription.secret != old
    assert subscription.secret in response.content.decode()


def test_editing_and_deleting_a_subscription(client_as):
    subscription = Subscription.objects.create(url="https://a.example/h", events=["tier.changed"])
    make_deliveries(subscription, 2)
    client = client_as("admin")
    response = client.post(
        reverse("webhooks:subscription-edit", args=[subscription.pk]),
        {"url": "https://b.example/h", "events": ["coupon.issued"]},
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.url, subscription.events, subscription.is_active) == (
        "https://b.example/h",
        ["coupon.issued"],
        False,
    )
    client.post(reverse("webhooks:subscription-delete", args=[subscription.pk]))
    assert (Subscription.objects.count(), Delivery.objects.count()) == (0, 0)


def test_the_delivery_log_filters_by_status_and_costs_the_same_queries_for_more_rows(
    client_as, django_assert_num_queries
):
    subscription = Subscription.objects.create(url="https://a.example/h", events=["tier.changed"])
    make_deliveries(subscription, 3)
    client = client_as("admin")
    url = reverse("webhooks:delivery-list")
    client.get(url)
    # The session (from the cache when there is Redis) and the user; then the subscriptions for
    # the filter, the count and the page of deliveries with their subscriptions.
    signed_in = 1 if shared_redis() is not None else 2
    with django_assert_num_queries(signed_in + 3) as few:
        response = client.get(url)
    assert len(response.context["page"]) == 3
    make_deliveries(Subscription.objects.create(url="https://c.example/h", events=[]), 3)
    Delivery.objects.filter(subscription__url="https://c.example/h").update(status="failed")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["page"]) == 6
    failed = client.get(url, {"status": "failed"})
    assert [d.subscription.url for d in failed.context["page"]] == ["https://c.example/h"] * 3
    refused = client.get(url, {"status": "lost"})
    assert refused.status_code == 200
    assert len(refused.context["page"]) == 0


def test_the_resend_button_puts_a_delivery_back_in_the_queue(client_as):
    subscription = Subscription.objects.create(url="https://a.example/h", events=["tier.changed"])
    make_deliveries(subscription, 1, status="failed")
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(attempts=10)
    response = client_as("admin").post(
        reverse("webhooks:delivery-resend", args=[delivery.pk]),
        {"next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("webhooks:delivery-list")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_only_the_administrator_manages_webhooks(client_as):
    for persona in ("manager", "support", "marketer"):
        assert client_as(persona).get(reverse("webhooks:subscription-list")).status_code == 403


def test_the_signing_page_shows_the_header_and_a_verification_snippet(client_as):
    text = client_as("admin").get(reverse("webhooks:signing")).content.decode()
    assert "X-Loyalty-Signature" in text
    assert "hmac.compare_digest" in text

"""A store manager sees and changes only members and purchases of the stores they manage."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.purchases import record_purchase
from loyalty.models import Purchase


@pytest.fixture
def two_members(make_member):
    return make_member("MSK-01", "1000.00", first_name="Мария"), make_member(
        "SPB-01", "2000.00", first_name="Пётр"
    )


def test_manager_finds_only_members_of_their_store(client_as, manager, two_members):
    ours, theirs = two_members
    response = client_as("manager").get(reverse("members:member-list"), {"q": "7913"})
    assert ours.card_number in response.content.decode()
    assert theirs.card_number not in response.content.decode()


@pytest.mark.parametrize(
    "name,method",
    [
        ("members:member-detail", "get"),
        ("members:member-edit", "get"),
        ("members:member-adjust", "post"),
        ("members:member-block", "post"),
        ("members:member-merge", "post"),
    ],
)
def test_other_stores_member_pages_are_404_for_a_manager(
    client_as, manager, two_members, name, method
):
    _ours, theirs = two_members
    client = client_as("manager")
    response = getattr(client, method)(
        reverse(name, args=[theirs.card_number]), {"points": 10, "reason": "x"}
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.points_balance == 60
    assert theirs.status == "active"


def test_a_member_who_bought_in_our_store_is_ours_too(client_as, manager, two_members, stores):
    from loyalty.engine.purchases import record_purchase

    _ours, theirs = two_members
    record_purchase(
        store=stores["MSK-01"],
        external_id="VISIT",
        card_number=theirs.card_number,
        amount="100.00",
        occurred_at=theirs.enrolled_at,
    )
    response = client_as("manager").get(reverse("members:member-detail", args=[theirs.card_number]))
    assert response.status_code == 200


def test_manager_refunds_only_purchases_of_their_stores(client_as, manager, two_members):
    _ours, theirs = two_members
    purchase = Purchase.objects.get(member=theirs)
    response = client_as("manager").post(
        reverse("purchases:purchase-refund", args=[purchase.pk]), {"amount": "10.00"}
    )
    assert response.status_code == 404
    purchase.refresh_from_db()
    assert purchase.refunded_amount == 0


def test_manager_cannot_record_a_purchase_in_another_store(client_as, manager, two_members, stores):
    ours, _theirs = two_members
    response = client_as("manager").post(
        reverse("purchases:purchase-create"),
        {
            "store": stores["SPB-01"].pk,
            "external_id": "X1",
            "card_number": ours.card_number,
            "amount": "100.00",
            "redeem_points": 0,
            "channel": "store",
        },
    )
    assert response.status_code == 200
    assert "store" in response.context["form"].errors
    assert not Purchase.objects.filter(external_id="X1").exists()


def test_manager_sees_only_their_stores_purchases(client_as, manager, two_members):
    response = client_as("manager").get(reverse("purchases:purchase-list"))
    codes = {purchase.store.code for purchase in response.context["page"]}
    assert codes == {"MSK-01"}


@pytest.mark.parametrize("persona", ["manager", "support", "marketer"])
def test_only_an_administrator_downloads_members_contacts(
    client_as, manager, support, marketer, two_members, persona
):
    response = client_as(persona).get(reverse("members:export-members"))

    assert response.status_code == 403
    assert not hasattr(response, "streaming_content")


def test_the_administrators_members_export_holds_phones_and_emails(
    client_as, admin_user_, make_member
):
    member = make_member("SPB-01", email="petr@example.com")

    response = client_as("admin").get(reverse("members:export-members"))

    body = b"".join(response.streaming_content).decode()
    assert f"{member.phone},petr@example.com," in body


def test_manager_purchases_export_holds_only_their_stores(client_as, manager, two_members):
    response = client_as("manager").get(reverse("members:export-purchases"))
    rows = b"".join(response.streaming_content).decode().splitlines()
    assert [row.split(",")[1] for row in rows] == ["store", "MSK-01"]


@pytest.fixture
def shopper_at_both(make_member, stores):
    """A member of MSK-01 who also bought once at SPB-01 (receipt SPB-RECEIPT-7)."""
    member = make_member("MSK-01", "1000.00")
    record_purchase(
        store=stores["SPB-01"],
        external_id="SPB-RECEIPT-7",
        card_number=member.card_number,
        amount=Decimal("2000.00"),
        occurred_at=timezone.now(),
    )
    return member


def test_manager_sees_only_their_stores_receipts_on_a_members_page(
    client_as, manager, shopper_at_both
):
    response = client_as("manager").get(
        reverse("members:member-detail", args=[shopper_at_both.card_number]),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    page = response.content.decode()
    assert [p.store.code for p in response.context["purchases_page"]] == ["MSK-01"]
    assert "SPB-RECEIPT-7" not in page
    # The points history still adds up to the balance: the entry shows, its receipt does not.
    ledger = [(e.points, e.receipt is None) for e in response.context["ledger_page"]]
    assert ledger == [(60, True), (30, False)]
    assert "another store" in page


def test_support_sees_every_receipt_on_a_members_page(client_as, support, shopper_at_both):
    response = client_as("support").get(
        reverse("members:member-detail", args=[shopper_at_both.card_number])
    )

    assert sorted(p.store.code for p in response.context["purchases_page"]) == [
        "MSK-01",
        "SPB-01",
    ]
    assert "SPB-RECEIPT-7" in response.content.decode()


def test_another_stores_receipt_of_an_in_scope_member_is_404_for_a_manager(
    client_as, manager, shopper_at_both
):
    theirs = Purchase.objects.get(external_id="SPB-RECEIPT-7")

    response = client_as("manager").get(
        reverse("members:member-purchase", args=[shopper_at_both.card_number, theirs.pk])
    )

    assert response.status_code == 404


def test_support_sees_every_store(client_as, support, two_members):
    _ours, theirs = two_members
    response = client_as("support").get(reverse("members:member-detail", args=[theirs.card_number]))
    assert response.status_code == 200


def test_home_shows_today_in_the_managers_store_only(client_as, manager, two_members):
    response = client_as("manager").get("/", HTTP_ACCEPT_LANGUAGE="en")
    today = response.context["today"]
    # Both members bought today, but only MSK-01's purchase (1,000.00, 30 points) is ours.
    assert (today["count"], today["revenue"], today["earned"], today["enrolled"]) == (
        1,
        1000,
        30,
        1,
    )
    assert "Today in" in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "status", "linked"),
    [("admin", 200, True), ("manager", 403, False), ("marketer", 403, False)],
)
def test_partner_settlement_is_for_administrators(
    client_as, admin_user_, manager, marketer, persona, status, linked
):
    client = client_as(persona)
    url = reverse("messaging:partner-settlement")

    assert client.get(url).status_code == status
    assert (f'href="{url}"' in client.get("/").content.decode()) is linked

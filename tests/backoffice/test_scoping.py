"""A store manager sees and changes only members and purchases of the stores they manage."""

import pytest
from django.urls import reverse

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
    from loyalty.services.purchases import record_purchase

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


def test_manager_export_holds_only_their_members(client_as, manager, two_members):
    ours, theirs = two_members
    response = client_as("manager").get(reverse("members:export-members"))
    body = b"".join(response.streaming_content).decode()
    assert str(ours.phone) in body
    assert str(theirs.phone) not in body


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

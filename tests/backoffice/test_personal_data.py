"""A member's personal data on request: the whole file from the member page (support and
administrators), audited."""

import json

import pytest
from django.urls import reverse

from loyalty.models import AuditLog
from members.personal_data import member_data
from tests.stories import member_with_a_story


@pytest.fixture
def story(stores, support):
    return member_with_a_story(stores, support)


def download(client, member):
    return client.get(reverse("members:member-personal-data", args=[member.card_number]))


def test_the_file_holds_everything_about_the_member(client_as, story):
    response = download(client_as("support"), story)

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="personal-data-{story.card_number}.json"'
    )
    data = json.loads(response.content)
    assert data["format"] == "loyalty-personal-data/1"
    profile = data["profile"]
    assert (profile["phone"], profile["email"], profile["first_name"], profile["last_name"]) == (
        str(story.phone),
        "anna@example.com",
        "Анна",
        "Смирнова",
    )
    assert profile["birth_date"] == story.birth_date.isoformat()
    assert profile["points_balance"] == 30 + 50 - 7  # 3% of 1,000.00, the adjustment, a refund
    assert [(c["given"], c["source"], c["text"]) for c in data["consents"]] == [
        (True, "store", "Я согласна получать предложения.")
    ]
    (purchase,) = data["purchases"]
    assert (purchase["external_id"], purchase["amount"], purchase["refunded_amount"]) == (
        "S-1",
        "1000.00",
        "250.00",
    )
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in purchase["lines"]] == [
        ("TEA", "2.000", "250.00"),
        ("CAKE", "1.000", "500.00"),
    ]
    assert [(r["refund_id"], r["amount"], r["reversed_points"]) for r in purchase["refunds"]] == [
        ("S-R1", "250.00", 7)
    ]
    assert [(e["kind"], e["points"], e["purchase"]) for e in data["ledger"]] == [
        ("earn", 30, "S-1"),
        ("refund_reversal", -7, "S-1"),
        ("adjust", 50, None),
    ]
    assert sum(entry["points"] for entry in data["ledger"]) == profile["points_balance"]
    (message,) = data["messages"]
    assert (message["to"], message["subject"]) == ("anna@example.com", "С днём рождения, Анна!")
    (answer,) = data["survey_answers"]
    assert (answer["survey"], answer["score"], answer["comment"]) == (
        "nps",
        9,
        "Анна: всё понравилось",
    )
    (case,) = data["complaints"]
    assert case["subject"] == "Анна Смирнова: не начислили баллы"
    assert [note["text"] for note in case["notes"]] == ["Перезвонить Анне после 18:00"]


def test_each_download_is_audited_with_who_asked(client_as, story, support):
    download(client_as("support"), story)

    entry = AuditLog.objects.filter(member=story, action="member.export").get()
    assert (entry.actor, entry.object_id, entry.after) == (support, str(story.pk), {})


@pytest.mark.parametrize("persona", ["manager", "marketer"])
def test_other_roles_may_not_download_it(client_as, story, persona):
    assert download(client_as(persona), story).status_code == 403
    assert not AuditLog.objects.filter(action="member.export").exists()


def test_the_administrator_may_download_it(client_as, story, admin_user_):
    assert download(client_as("admin"), story).status_code == 200


def test_the_file_takes_the_same_queries_however_long_the_history(
    stores, support, django_assert_num_queries
):
    short = member_with_a_story(stores, support, receipts=1, prefix="A")
    long = member_with_a_story(stores, support, receipts=6, prefix="B")
    with django_assert_num_queries(11) as counted:
        member_data(short)
    with django_assert_num_queries(len(counted.captured_queries)):
        data = member_data(long)
    assert len(data["purchases"]) == 6
    assert sum(len(purchase["lines"]) for purchase in data["purchases"]) == 12


def test_the_member_page_offers_the_download_to_support_only(client_as, story):
    url = reverse("members:member-detail", args=[story.card_number])
    link = reverse("members:member-personal-data", args=[story.card_number])
    assert link in client_as("support").get(url).content.decode()
    assert link not in client_as("marketer").get(url).content.decode()

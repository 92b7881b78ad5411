"""The member page: its history pages without counting the whole history, merged cards, and
a receipt's lines fetched when it is opened."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.engine.adjustments import adjust_points
from loyalty.engine.purchases import Line, record_purchase, refund_purchase
from tests.helpers import prepared_statement_count, session_queries


def page(client, member, **params):
    url = reverse("members:member-detail", args=[member.card_number])
    return client.get(url, params, headers={"Accept-Language": "en"})


def ledger(response):
    """The points history section of the page (the audit table below repeats the reasons)."""
    return response.text.split('<section id="ledger">')[1].split("</section>")[0]


def test_points_history_pages_go_back_twenty_entries_at_a_time(client_as, support, make_member):
    member = make_member("MSK-01")
    for index in range(25):
        adjust_points(member_id=member.pk, points=1, reason=f"goodwill {index:02d}", staff=support)
    client = client_as("support")

    first = ledger(page(client, member))
    second = ledger(page(client, member, ledger_page=2))
    beyond = ledger(page(client, member, ledger_page="x"))
    huge = page(client, member, ledger_page=10**20)

    assert "goodwill 24" in first and "goodwill 05" in first
    assert "goodwill 04" not in first
    assert "Page 1" in first and "ledger_page=2" in first
    assert "ledger_page=1" not in first
    assert "goodwill 04" in second and "goodwill 00" in second
    assert "goodwill 05" not in second
    assert "ledger_page=1" in second and "ledger_page=3" not in second
    assert "goodwill 24" in beyond  # a page number that is not one: the first page
    assert huge.status_code == 200 and "goodwill 24" in ledger(huge)


def test_a_page_past_the_end_shows_the_first_page(client_as, support, make_member):
    member = make_member("MSK-01", "100.00", "200.00")

    response = page(client_as("support"), member, purchases_page=7)

    assert response.status_code == 200
    assert response.text.count('class="purchase"') == 2
    assert "Purchase pages" not in response.text  # one page: no pager


def test_the_page_of_a_member_lists_the_cards_merged_into_it(client_as, support, make_member):
    keep, duplicate = make_member("MSK-01"), make_member("MSK-01")
    client = client_as("support")
    assert "Merged from" not in page(client, keep).text
    client.post(
        reverse("members:member-merge", args=[keep.card_number]),
        {"duplicate_card": duplicate.card_number, "reason": "duplicate"},
    )

    assert duplicate.card_number in page(client, keep).text.split("Merged from")[1]


def test_a_receipts_lines_and_refunds_come_when_its_row_is_opened(
    client_as, stores, make_member, django_assert_num_queries
):
    member = make_member("MSK-01")
    record_purchase(
        store=stores["MSK-01"],
        external_id="LINES-1",
        card_number=member.card_number,
        amount=Decimal("300.00"),
        occurred_at=timezone.now(),
        lines=[
            Line(sku="MILK-1L", quantity=Decimal("2"), unit_price=Decimal("100.00")),
            Line(sku="BREAD", quantity=Decimal("1"), unit_price=Decimal("100.00")),
        ],
    )
    refund_purchase(
        store=stores["MSK-01"], external_id="LINES-1", refund_id="RF-77", amount="100.00"
    )
    client = client_as("support")
    url = reverse("members:member-purchase", args=[member.card_number, member.purchases.get().pk])

    member_page = page(client, member).text
    # The user and its permissions (3), the member, the receipt, its lines, its refunds; and the
    # session when no shared cache holds sessions.
    session = session_queries()
    with django_assert_num_queries(7 + session):
        fragment = client.get(url, headers={"HX-Request": "true", "Accept-Language": "en"})
    whole = client.get(url, headers={"Accept-Language": "en"})
    russian = client.get(url, headers={"HX-Request": "true", "Accept-Language": "ru"})

    assert "MILK-1L" not in member_page  # the page does not carry every receipt's lines
    assert f'hx-get="{url}"' in member_page
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "MILK-1L" in fragment.text and "BREAD" in fragment.text
    assert "<code>RF-77</code>" in fragment.text
    assert "Refund <code>RF-77</code>" in fragment.text
    reversed_points = member.purchases.get().earned_points // 3  # a third of the amount back
    assert reversed_points > 0
    assert f"{reversed_points} points reversed, 0 returned" in fragment.text
    assert "Возврат <code>RF-77</code>" in russian.text
    assert whole.status_code == 200 and "<html" in whole.text
    assert "LINES-1" in whole.text and "MILK-1L" in whole.text


def test_a_receipt_is_shown_only_under_its_own_member_and_to_staff_who_see_them(
    client_as, manager, make_member
):
    owner, other = make_member("SPB-01", "100.00"), make_member("SPB-01")
    receipt = owner.purchases.get()
    client = client_as("support")

    mine = client.get(reverse("members:member-purchase", args=[owner.card_number, receipt.pk]))
    theirs = client.get(reverse("members:member-purchase", args=[other.card_number, receipt.pk]))
    elsewhere = client_as("manager").get(  # the manager of MSK-01
        reverse("members:member-purchase", args=[owner.card_number, receipt.pk])
    )

    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert elsewhere.status_code == 404


def test_a_receipt_without_lines_says_so(client_as, make_member):
    member = make_member("MSK-01", "100.00")
    url = reverse("members:member-purchase", args=[member.card_number, member.purchases.get().pk])

    headers = {"HX-Request": "true", "Accept-Language": "en"}
    response = client_as("support").get(url, headers=headers)

    assert "The receipt has no lines." in response.text
    assert "<table" not in response.text


def test_the_member_page_prepares_its_statements_and_the_search_does_not(client_as, make_member):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL feature")

    member = make_member("MSK-01", "100.00")
    client = client_as("support")
    before = prepared_statement_count()
    for _ in range(6):  # prepared at the fifth run
        assert page(client, member).status_code == 200
    after_page = prepared_statement_count()
    for _ in range(6):  # a search's best plan depends on the text searched
        client.get(reverse("members:member-list"), {"q": "7913"})
    after_search = prepared_statement_count()

    assert after_page > before
    assert after_search == after_page
    assert connection.connection.prepare_threshold is None

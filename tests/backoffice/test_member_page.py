"""The member page: its history pages without counting the whole history, merged cards."""

from django.urls import reverse

from loyalty.services.adjustments import adjust_points


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

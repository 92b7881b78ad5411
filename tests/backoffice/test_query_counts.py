"""Lists and the member page cost a fixed number of queries, whatever the number of rows."""

import pytest
from django.urls import reverse

from loyalty.models import AuditLog
from loyalty.services.adjustments import adjust_points


def _fill(make_member, count):
    for _ in range(count):
        make_member("MSK-01", "1000.00", "200.00")


@pytest.mark.parametrize(
    "url_name",
    [
        "members:member-list",
        "purchases:purchase-list",
        "loyalty:audit-list",
        "loyalty:staff-list",
        "loyalty:store-list",
        "loyalty:apikey-list",
        "loyalty:program",
        "members:import",
    ],
)
def test_list_pages_do_not_grow_queries_with_rows(
    client_as, admin_user_, make_member, url_name, django_assert_max_num_queries
):
    client = client_as("admin")
    _fill(make_member, 3)
    with django_assert_max_num_queries(20) as few:
        assert client.get(reverse(url_name)).status_code == 200
    _fill(make_member, 6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse(url_name)).status_code == 200


def test_member_page_queries_do_not_grow_with_history(
    client_as, support, make_member, django_assert_max_num_queries
):
    client = client_as("support")
    member = make_member("MSK-01", "1000.00", "300.00")
    url = reverse("members:member-detail", args=[member.card_number])
    with django_assert_max_num_queries(16) as few:
        assert client.get(url).status_code == 200
    for index in range(8):
        adjust_points(member_id=member.pk, points=5, reason=f"r{index}", staff=support)
    from loyalty.services.purchases import record_purchase

    for index in range(6):
        record_purchase(
            store=member.enrolled_store,
            external_id=f"MORE-{index}",
            card_number=member.card_number,
            amount="100.00",
            occurred_at=member.enrolled_at,
        )
    assert AuditLog.objects.filter(member=member).count() == 8
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_member_search_is_a_fixed_number_of_queries(
    client_as, support, make_member, django_assert_max_num_queries
):
    client = client_as("support")
    _fill(make_member, 10)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("members:member-list"), {"q": "7913"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.count("/members/2") == 10  # one link per member found
    assert "<html" not in html  # only the results fragment

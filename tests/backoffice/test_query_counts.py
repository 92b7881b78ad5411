"""Lists and the member page cost a fixed number of queries, whatever the number of rows."""

import itertools
from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty import roles
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.apikeys import create_api_key
from loyalty.models import ApiKey, AuditLog, Purchase, Store, Tier, User
from members.models import ImportJob, Member

_rows = itertools.count(1)


@pytest.fixture
def add_rows(make_member, make_staff, stores, admin_user_):
    """Add ``count`` rows of the kind a list page shows: ``add_rows("loyalty:store-list", 4)``.

    Each row has its own related objects (its own member, store or creator), so a page that
    fetched them row by row would make more queries with more rows."""

    def members(count):
        for _ in range(count):
            make_member("MSK-01")

    def purchases(count):
        for _ in range(count):
            make_member(next(STORES), "1000.00")

    def audit_entries(count):
        for index in range(count):
            member = make_member("MSK-01")
            adjust_points(member_id=member.pk, points=5, reason=f"r{index}", staff=admin_user_)

    def staff(count):
        for _ in range(count):
            make_staff(f"manager{next(_rows)}", roles.STORE_MANAGER, [next(STORES)])

    def store_rows(count):
        for _ in range(count):
            number = next(_rows)
            store = Store.objects.create(code=f"QC-{number}", name=f"Магазин {number}")
            make_staff(f"cashier{number}", roles.STORE_MANAGER).stores.add(store)

    def api_keys(count):
        for _ in range(count):
            create_api_key(
                store=stores[next(STORES)], name=f"till {next(_rows)}", staff=admin_user_
            )

    def tiers(count):
        for _ in range(count):
            number = next(_rows)
            Tier.objects.create(
                code=f"tier-{number}",
                name=f"Tier {number}",
                threshold=Decimal(100_000 + number),
                earn_rate=Decimal("0.0900"),
                perks=["free_delivery"],
            )

    def imports(count):
        for _ in range(count):
            ImportJob.objects.create(
                kind=ImportJob.Kind.MEMBERS, file="imports/members.csv", created_by=admin_user_
            )

    fillers = {
        "members:member-list": members,
        "purchases:purchase-list": purchases,
        "loyalty:audit-list": audit_entries,
        "loyalty:staff-list": staff,
        "loyalty:store-list": store_rows,
        "loyalty:apikey-list": api_keys,
        "loyalty:program": tiers,
        "members:import": imports,
    }

    def add(url_name, count):
        before = ROW_COUNTS[url_name]()
        fillers[url_name](count)
        assert ROW_COUNTS[url_name]() == before + count

    return add


STORES = itertools.cycle(["MSK-01", "MSK-02", "SPB-01"])
ROW_COUNTS = {
    "members:member-list": Member.objects.count,
    "purchases:purchase-list": Purchase.objects.count,
    "loyalty:audit-list": AuditLog.objects.count,
    "loyalty:staff-list": User.objects.count,
    "loyalty:store-list": Store.objects.count,
    "loyalty:apikey-list": ApiKey.objects.count,
    "loyalty:program": Tier.objects.count,
    "members:import": ImportJob.objects.count,
}


@pytest.mark.parametrize("url_name", list(ROW_COUNTS))
def test_list_pages_do_not_grow_queries_with_rows(
    client_as, add_rows, url_name, django_assert_max_num_queries
):
    client = client_as("admin")
    add_rows(url_name, 1)
    with django_assert_max_num_queries(20) as few:
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    rows_before = table_rows(response)
    add_rows(url_name, 4)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert table_rows(response) >= rows_before + 4  # the new rows are on the page


def table_rows(response):
    """The rows of a page's tables (a row that lists nothing would not count as a shown row)."""
    return response.content.decode().count("<tr")


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
    from loyalty.engine.purchases import record_purchase

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
    for _ in range(10):
        make_member("MSK-01", "1000.00", "200.00")
    with django_assert_max_num_queries(8):
        response = client.get(reverse("members:member-list"), {"q": "7913"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.count("/members/2") == 10  # one link per member found
    assert "<html" not in html  # only the results fragment

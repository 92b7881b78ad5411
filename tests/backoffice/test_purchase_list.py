"""The purchase list pages through millions of receipts without counting them."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def test_the_purchase_list_goes_back_fifty_receipts_at_a_time(client_as, support, make_member):
    make_member("MSK-01", *["10.00"] * 52)
    client = client_as("support")
    url = reverse("purchases:purchase-list")

    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url, headers={"Accept-Language": "en"})
    # Read before the next request: each request empties the query log.
    statements = [query["sql"].upper() for query in first_queries.captured_queries]
    second = client.get(url, {"page": 2}, headers={"Accept-Language": "en"})
    beyond = client.get(url, {"page": "x"}, headers={"Accept-Language": "en"})

    assert statements and not any("COUNT(" in sql for sql in statements)
    assert len(first.context["page"]) == 50
    assert "Page 1" in first.text and "page=2" in first.text
    assert len(second.context["page"]) == 2
    assert "Page 2" in second.text and "page=1" in second.text and "page=3" not in second.text
    assert [p.pk for p in beyond.context["page"]] == [p.pk for p in first.context["page"]]

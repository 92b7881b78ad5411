"""General coupons from the back-office: a shared code with a use limit, a series of unique
codes with their CSV, each working at the till exactly as issued; bad input changes nothing."""

import csv
import io
import re

import pytest
from django.urls import reverse

from loyalty.models import AuditLog, Coupon

URL = "campaigns:coupon-list"
TERMS = {"kind": "percent", "value": "10", "sku": "", "min_amount": "500", "valid_from": ""}


def issue(client, **fields):
    return client.post(reverse(URL), {**TERMS, "valid_until": "", **fields})


def test_a_shared_code_works_at_the_till_up_to_its_limit(client_as, marketer, pos):
    response = issue(client_as("marketer"), mode="shared", code="SUMMER25", max_uses="2")
    assert response.status_code == 302
    coupon = Coupon.objects.get()
    assert (coupon.code, coupon.max_uses, coupon.member_id) == ("SUMMER25", 2, None)
    entry = AuditLog.objects.get(action="coupon.issue")
    assert entry.actor == marketer and entry.after["count"] == 1

    first, second, third = (pos.enrol()["card_number"] for _ in range(3))
    receipt = pos.buy(first, "1000.00", coupon_code="summer25")
    assert (receipt["discount_amount"], receipt["paid_amount"]) == ("100.00", "900.00")
    assert pos.buy(second, "400.00", coupon_code="SUMMER25", expect=422)["error"]["code"] == (
        "coupon_not_applicable"  # below the minimum purchase of 500.00
    )
    pos.buy(second, "500.00", coupon_code="SUMMER25")
    error = pos.buy(third, "800.00", coupon_code="SUMMER25", expect=422)["error"]
    assert error["code"] == "coupon_not_applicable"
    coupon.refresh_from_db()
    assert coupon.uses == 2


def test_a_series_of_unique_codes_downloads_and_each_code_works_once(client_as, marketer, pos):
    client = client_as("marketer")
    assert issue(client, mode="unique", prefix="XMAS", count="25").status_code == 302
    page = client.get(reverse(URL), {"prefix": "XMAS-"})
    assert page.context["page"].paginator.count == 25

    export = client.get(reverse("campaigns:coupon-export"), {"prefix": "XMAS-"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    codes = [row["code"] for row in rows]
    assert len(codes) == len(set(codes)) == 25
    assert all(re.fullmatch(r"XMAS-[2-9A-HJKMNP-Z]{10}", code) for code in codes)
    assert {(row["kind"], row["value"], row["max_uses"], row["uses"]) for row in rows} == {
        ("percent", "10.00", "1", "0")
    }

    card, other = pos.enrol()["card_number"], pos.enrol()["card_number"]
    assert pos.buy(card, "2000.00", coupon_code=codes[0])["discount_amount"] == "200.00"
    assert pos.buy(other, "2000.00", coupon_code=codes[0], expect=422)["error"]["code"] == (
        "coupon_not_applicable"
    )
    assert pos.buy(other, "2000.00", coupon_code=codes[1])["discount_amount"] == "200.00"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": "shared", "code": "BIG", "value": "150"}, "value"),
        ({"mode": "shared", "code": ""}, "code"),
        ({"mode": "unique", "prefix": "", "count": "10"}, "prefix"),
        ({"mode": "unique", "prefix": "AB", "count": "100001"}, "count"),
        ({"mode": "shared", "code": "FREE", "kind": "free_product"}, "sku"),
        ({"mode": "shared", "code": "TAKEN"}, "code"),
    ],
)
def test_bad_input_is_a_form_error_and_issues_nothing(client_as, marketer, fields, field):
    Coupon.objects.create(code="taken", kind="fixed", value=5)
    response = issue(client_as("marketer"), **fields)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert Coupon.objects.count() == 1
    assert not AuditLog.objects.filter(action="coupon.issue").exists()


def test_the_list_reads_in_a_fixed_number_of_queries(
    client_as, marketer, django_assert_max_num_queries
):
    Coupon.objects.bulk_create(
        Coupon(code=f"LIST-{n:04d}", kind="fixed", value=50, max_uses=1) for n in range(120)
    )
    client = client_as("marketer")
    with django_assert_max_num_queries(8):
        response = client.get(reverse(URL))
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 50


@pytest.mark.parametrize("persona", ["manager", "support"])
def test_only_marketers_and_administrators_issue_coupons(client_as, persona):
    assert issue(client_as(persona), mode="shared", code="MINE").status_code == 403
    assert not Coupon.objects.exists()

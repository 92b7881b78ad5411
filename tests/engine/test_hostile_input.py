"""Malformed and hostile input never gives a 500 and never writes anything."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.models import LedgerEntry, Purchase
from members.models import Member

VALID_CARD = "2000000000008"

HOSTILE_PURCHASES = [
    {},
    {"external_id": "R", "amount": "abc"},
    {"external_id": "R", "amount": "-1.00"},
    {"external_id": "R", "amount": "0.00"},
    {"external_id": "R", "amount": "0"},
    {"external_id": "R", "amount": "1e400"},
    {"external_id": "R", "amount": "NaN"},
    {"external_id": "R", "amount": "Infinity"},
    {"external_id": "R", "amount": "99999999999999999999.99"},
    {"external_id": "R", "amount": "10.001"},
    {"external_id": "R", "amount": None},
    {"external_id": "R", "amount": [1]},
    {"external_id": "R", "amount": {"a": 1}},
    {"external_id": "R", "amount": True},
    {"external_id": 12, "amount": "10.00", "redeem_points": "many"},
    {"external_id": "R", "amount": "10.00", "redeem_points": -5},
    {"external_id": "R", "amount": "10.00", "redeem_points": 10**30},
    {"external_id": "R", "amount": "10.00", "redeem_points": 1.5},
    {"external_id": "R", "amount": "10.00", "card_number": "1234"},
    {"external_id": "R", "amount": "10.00", "card_number": "'; DROP TABLE members_member; --"},
    {"external_id": "'; DROP TABLE loyalty_purchase; --", "amount": "10.00", "foo": 1},
    {"external_id": "x" * 65, "amount": "10.00"},
    {"external_id": "R\x00", "amount": "10.00"},
    {"external_id": "R\ud800", "amount": "10.00"},
    {"external_id": "R", "amount": "10.00", "channel": "telepathy"},
    {"external_id": "R", "amount": "10.00", "occurred_at": "yesterday"},
    {"external_id": "R", "amount": "10.00", "occurred_at": "2999-01-01T00:00:00Z"},
    {"external_id": "R", "amount": "10.00", "occurred_at": "0001-01-01T00:00:00Z"},
    {"external_id": "R", "amount": "10.00", "lines": "all of them"},
    {"external_id": "R", "amount": "10.00", "lines": [{"sku": "A", "quantity": "-1"}]},
    {
        "external_id": "R",
        "amount": "10.00",
        "lines": [{"sku": "A", "quantity": "1", "unit_price": "1", "evil": 1}],
    },
    {"external_id": "R", "amount": "10.00", "lines": [{}] * 501},
    {"external_id": "R", "amount": "10.00", "coupon_code": {"$ne": 1}},
    {"external_id": "R", "amount": "10.00", "unknown": "field"},
]


def nothing_written():
    return Purchase.objects.count() == 0 and LedgerEntry.objects.count() == 0


def written_counts():
    return Purchase.objects.count(), LedgerEntry.objects.count()


@pytest.mark.parametrize("body", HOSTILE_PURCHASES, ids=range(len(HOSTILE_PURCHASES)))
def test_hostile_purchase_is_refused_with_the_error_envelope(api, body):
    response = api.post("/api/v1/purchases", json.dumps(body), content_type="application/json")
    assert 400 <= response.status_code < 500, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert nothing_written()


@pytest.mark.parametrize(
    "raw,content_type",
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b'"a string"', "application/json"),
        (b"amount=10", "application/x-www-form-urlencoded"),
        (b"<xml/>", "text/xml"),
    ],
)
def test_malformed_body_is_a_clear_4xx(api, raw, content_type):
    response = api.generic("POST", "/api/v1/purchases", raw, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"]
    assert nothing_written()


def test_ten_megabyte_body_is_refused_before_it_is_read(api):
    body = json.dumps({"external_id": "R", "amount": "10.00", "pad": "x" * (10 * 1024 * 1024)})
    response = api.post("/api/v1/purchases", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert nothing_written()


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "not a phone"},
        {"phone": "+7 912"},
        {"phone": "+79123456789", "email": "not-an-email"},
        {"phone": "+79123456789", "birth_date": "1800-01-01"},
        {"phone": "+79123456789", "birth_date": "2999-01-01"},
        {"phone": "+79123456789", "first_name": "x" * 101},
        {"phone": "+79123456789", "referral_code": "NOSUCH"},
        {"phone": "+79123456789", "marketing_consent": "maybe"},
        {"phone": "+79123456789", "is_superuser": True},
        {"phone": ["+79123456789"]},
    ],
)
def test_hostile_enrolment_is_refused_and_creates_no_member(api, body):
    response = api.post("/api/v1/members", body, format="json")
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"]
    assert Member.objects.count() == 0


def test_odd_unicode_names_are_kept_exactly(api):
    name = "Zoë 𝔄𝔫𝔫𝔞 👩‍👩‍👧 اَلْعَرَبِيَّةُ"
    response = api.post(
        "/api/v1/members", {"phone": "+79123456789", "first_name": name}, format="json"
    )
    assert response.status_code == 201
    assert Member.objects.get().first_name == name


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "external_id",
                "amount",
                "card_number",
                "redeem_points",
                "lines",
                "occurred_at",
                "channel",
                "coupon_code",
                "x",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            st.text(max_size=80),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
        ),
    )
)
def test_random_bodies_never_give_a_server_error(api, body):
    # Hypothesis reuses one database for all examples, and a random body can be a valid
    # purchase, so compare counts around this request rather than with zero.
    before = written_counts()
    response = api.post("/api/v1/purchases", json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (body, response.content)
    if response.status_code >= 400:
        assert written_counts() == before, body


# --- NUL bytes, deep JSON, long URLs (issue 16, item 3) --------------------------------------


def assert_envelope(response, status, code, fields=()):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    named = {name: [ANY_TEXT] for name in fields}
    assert response.json() == {"error": {"code": code, "message": ANY_TEXT, "fields": named}}


class _AnyText:
    def __eq__(self, other):
        return isinstance(other, str) and other.strip() != ""


ANY_TEXT = _AnyText()


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/api/v1/members?email=a%00b", ["email"]),
        ("/api/v1/members?phone=%2B7912%0012&email=a@example.com", ["phone"]),
        ("/api/v1/members?%00=1", ["\x00"]),
        (f"/api/v1/members/{VALID_CARD}%00", []),
        (f"/api/v1/members/{VALID_CARD}%00/ledger", []),
        ("/api/v1/members/%00", []),
    ],
)
def test_a_nul_byte_in_an_api_url_is_a_400_with_the_envelope(api, path, fields):
    """A NUL in a query parameter is that parameter's error; one in the path is the URL's."""
    assert_envelope(api.get(path), 400, "invalid", fields)


def test_a_nul_byte_in_a_posted_url_writes_nothing(api):
    response = api.post(
        "/api/v1/purchases/R%00/refunds", {"refund_id": "F", "amount": "1.00"}, format="json"
    )
    assert_envelope(response, 400, "invalid")
    assert nothing_written()


@pytest.mark.parametrize("path", ["/members/?q=a%00b", "/members/%00/", "/login/?next=%00"])
def test_a_nul_byte_in_a_page_url_is_a_400_not_a_500(client_as, path):
    response = client_as("admin").get(path)
    assert response.status_code == 400


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_a_thousand_deep_is_a_400_parse_error(api, depth):
    body = '{"external_id": "R", "amount": "10.00", "lines": ' + "[" * depth + "]" * depth + "}"
    response = api.generic("POST", "/api/v1/purchases", body, content_type="application/json")
    assert_envelope(response, 400, "malformed_request")
    assert nothing_written()


def test_an_api_url_over_4_kb_is_a_414_with_the_envelope(api):
    response = api.get("/api/v1/members?email=" + "a" * 4100)
    assert_envelope(response, 414, "uri_too_long")


def test_a_page_url_over_4_kb_is_a_414(client_as):
    response = client_as("admin").get("/members/?q=" + "a" * 4100)
    assert response.status_code == 414


def test_a_member_busy_past_the_lock_bound_is_a_503_with_retry_after(transactional_db, pos):
    import psycopg
    from django.db import connection

    from tests.helpers import database_url

    if connection.vendor != "postgresql":
        pytest.skip("row locks with a lock_timeout are PostgreSQL's")
    card = pos.enrol()["card_number"]
    with psycopg.connect(database_url(connection)) as other:  # another till, mid-purchase
        other.execute("SELECT 1 FROM members_member WHERE card_number = %s FOR UPDATE", [card])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            response = pos.client.post(
                "/api/v1/purchases",
                {"external_id": "R-busy", "card_number": card, "amount": "100.00"},
                format="json",
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        other.rollback()

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "busy"
    assert response["Retry-After"] == "1"
    assert nothing_written()

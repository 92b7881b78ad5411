"""API keys: Bearer only, per store, revocable; errors in the envelope; throttling."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from loyalty.engine.apikeys import revoke_api_key
from loyalty.models import ApiKey


def test_no_key_is_401_with_the_envelope():
    response = APIClient().get("/api/v1/members?phone=%2B79123456789")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer lk_abc_def", "Basic Zm9vOmJhcg=="])
def test_a_wrong_key_is_refused(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/members?phone=%2B79123456789")
    assert response.status_code == 401


def test_a_revoked_key_is_refused_at_once(api, pos):
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}").status_code == 200
    revoke_api_key(key_id=ApiKey.objects.get().pk)
    assert api.get(f"/api/v1/members/{card}").status_code == 401


def test_keys_are_stored_hashed(store):
    from loyalty.engine.apikeys import create_api_key

    _key, raw = create_api_key(store=store, name="till 1")
    stored = ApiKey.objects.get()
    assert raw not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64


def test_create_api_key_command_prints_a_working_key_as_its_last_line(store, capsys):
    call_command("create_api_key", "MSK-01")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/members?phone=%2B79123456789").status_code == 200


def test_a_store_cannot_refund_another_stores_purchase(pos, other_api):
    card = pos.enrol()["card_number"]
    receipt = pos.buy(card, "1000.00")
    response = other_api.post(
        f"/api/v1/purchases/{receipt['external_id']}/refunds",
        {"refund_id": "F", "amount": "10.00"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_api_path_and_wrong_method_use_the_envelope(api):
    missing = api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = api.delete("/api/v1/purchases")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_unknown_card_is_404(api):
    response = api.get("/api/v1/members/2000000000008")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"


def test_too_many_requests_are_throttled_with_429(api, settings):
    from django.core.cache import cache

    cache.clear()
    settings.API_THROTTLE_RATE = "3/min"
    codes = [api.get("/api/v1/members?phone=%2B79123456789").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = api.get("/api/v1/members?phone=%2B79123456789")
    assert response.json()["error"]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    cache.clear()


def test_schema_and_docs_are_served(api):
    schema = APIClient().get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/members",
        "/api/v1/members/{card_number}",
        "/api/v1/members/{card_number}/ledger",
        "/api/v1/purchases/quote",
        "/api/v1/purchases",
        "/api/v1/purchases/{external_id}/refunds",
    ]:
        assert path in paths
    docs = APIClient().get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def shared_cache():
    from loyalty.engine.apikeys import shared_redis

    if shared_redis() is None:
        pytest.skip("keys are remembered only with a shared cache (Redis)")


def test_with_redis_a_known_key_costs_no_query_and_revocation_still_counts_at_once(
    api, pos, django_assert_num_queries
):
    shared_cache()
    card = pos.enrol()["card_number"]
    api.get(f"/api/v1/members/{card}")
    with django_assert_num_queries(1):  # the member with its balance; no key lookup
        assert api.get(f"/api/v1/members/{card}").status_code == 200
    revoke_api_key(key_id=ApiKey.objects.get().pk)
    assert api.get(f"/api/v1/members/{card}").status_code == 401


def test_with_redis_a_store_change_reaches_a_remembered_key(api, pos, store):
    shared_cache()
    card = pos.enrol()["card_number"]
    assert pos.buy(card, "1000.00")["earned_points"] == 30
    store.kind = store.Kind.PARTNER
    store.earn_rate = "0.10"
    store.save()
    assert pos.buy(card, "1000.00")["earned_points"] == 100


def test_another_process_revoking_a_key_is_seen_on_the_next_request(api, pos):
    from loyalty.engine.apikeys import keys_changed

    shared_cache()
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}").status_code == 200
    # Another process revokes: the row changes and the shared version moves; this process
    # has the key in memory and must not trust it.
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    keys_changed()
    assert api.get(f"/api/v1/members/{card}").status_code == 401

"""API fixtures: a store's API key and a point of sale that enrols and buys through the API.

Loaded for every test by ``pytest_plugins`` in tests/conftest.py.
"""

import itertools
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from loyalty.engine.apikeys import create_api_key
from loyalty.models import Tier

_receipts = itertools.count(1)
_phones = itertools.count(1000)


@pytest.fixture
def store(stores):
    return stores["MSK-01"]


@pytest.fixture
def other_store(stores):
    return stores["SPB-01"]


def _client_for(store):
    _key, raw = create_api_key(store=store, name="test terminal")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def api(store):
    """An API client authenticated with a key of store MSK-01."""
    return _client_for(store)


@pytest.fixture
def other_api(other_store):
    return _client_for(other_store)


class Pos:
    """A point of sale talking to the API, as an integrator's terminal would."""

    def __init__(self, client):
        self.client = client

    def enrol(self, **fields):
        body = {"phone": f"+7912{next(_phones):07d}", **fields}
        response = self.client.post("/api/v1/members", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    def buy(self, card_number, amount, *, expect=201, **fields):
        body = {
            "external_id": fields.pop("external_id", f"R-{next(_receipts)}"),
            "card_number": card_number,
            "amount": amount,
            **fields,
        }
        response = self.client.post("/api/v1/purchases", body, format="json")
        assert response.status_code == expect, response.json()
        return response.json()

    def refund(self, external_id, amount, *, expect=201, refund_id=None):
        body = {"refund_id": refund_id or f"F-{next(_receipts)}", "amount": amount}
        response = self.client.post(f"/api/v1/purchases/{external_id}/refunds", body, format="json")
        assert response.status_code == expect, response.json()
        return response.json()

    def member(self, card_number):
        response = self.client.get(f"/api/v1/members/{card_number}")
        assert response.status_code == 200, response.json()
        return response.json()


@pytest.fixture
def pos(api):
    return Pos(api)


@pytest.fixture
def earn_rate():
    """Set the entry tier's earn rate (e.g. 0.095 to earn 95 points on 1,000.00)."""

    def set_rate(rate):
        Tier.objects.filter(code="bronze").update(earn_rate=Decimal(rate))

    return set_rate

"""A view that meets an unreachable broker (Redis) answers 503 with Retry-After, never 500."""

import json

import pytest

pytestmark = pytest.mark.urls("tests.foundation.broker_down_urls")


def test_a_page_that_meets_a_dead_broker_is_the_translated_503_page(client_as, broker_down):
    client = client_as("admin")

    response = client.get("/test-sends-a-task/")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert '<html lang="ru">' in page
    assert "Нужный нам сервис сейчас недоступен" in page


def test_an_api_call_that_meets_a_dead_broker_is_503_unavailable(client, broker_down):
    response = client.get("/api/v1/test-sends-a-task")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert json.loads(response.content) == {
        "error": {
            "code": "unavailable",
            "message": "A service the API needs is unreachable. Try again shortly.",
            "fields": {},
        }
    }

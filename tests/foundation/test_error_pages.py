"""The 400, 403, 404 and 500 pages and the expired-form (CSRF) page are the product's own: in
the reader's language, with the page's language declared, and drawn without the database."""

import io
import json
import re

import pytest
from django.test import Client, RequestFactory
from django.utils import translation
from rest_framework.exceptions import ParseError

from loyalty.api.parsers import JSONParser
from loyalty.web.views import permission_denied, server_error

# (what the page says in Russian, in English)
NOT_FOUND = ("Страница не найдена", "Page not found")
DENIED = ("Доступ запрещён", "Access denied")
EXPIRED = ("Форма устарела", "The form has expired")
BAD = ("Неверный запрос", "Bad request")
PRODUCT = (" · Бэк-офис программы лояльности", " · Loyalty back-office")
BROKEN = ("Что-то пошло не так на нашей стороне", "Something went wrong on our side")


def client_in(language, **options):
    client = Client(**options)
    client.cookies["language"] = language
    return client


def assert_error_page(response, status, words, language):
    assert response.status_code == status
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    heading = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert heading == words[0 if language == "ru" else 1]
    title = re.search(r"<title>(.*?)</title>", html).group(1)
    assert title.endswith(PRODUCT[0 if language == "ru" else 1])


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_missing_page_says_so_in_the_readers_language_without_the_database(
    db, language, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = client_in(language).get("/no-such-page/")

    assert_error_page(response, 404, NOT_FOUND, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_page_the_role_may_not_open_says_access_denied(manager, language):
    client = client_in(language)
    client.force_login(manager)

    response = client.get("/manage/staff/")

    assert_error_page(response, 403, DENIED, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_form_sent_without_its_csrf_token_says_the_form_expired(db, language):
    response = client_in(language, enforce_csrf_checks=True).post(
        "/login/", {"username": "support", "password": "x"}
    )

    assert_error_page(response, 403, EXPIRED, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_request_for_an_unknown_host_is_a_bad_request_page(db, language):
    response = client_in(language).get("/", HTTP_HOST="evil.example.com")

    assert_error_page(response, 400, BAD, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_server_error_page_needs_no_database(db, language, django_assert_num_queries):
    request = RequestFactory().get("/members/")
    with translation.override(language), django_assert_num_queries(0):
        response = server_error(request)

    assert_error_page(response, 500, BROKEN, language)


def test_the_api_keeps_its_error_envelope_for_a_missing_address(db):
    response = Client().get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("language", "message"), [("ru", "Не найдено."), ("en", "Not found.")])
def test_the_api_says_a_missing_address_in_the_callers_language(db, language, message):
    response = Client().get("/api/v1/no-such-thing", headers={"Accept-Language": language})

    assert response.json() == {"error": {"code": "not_found", "message": message, "fields": {}}}


@pytest.mark.parametrize(
    ("view", "status", "code", "message"),
    [
        (permission_denied, 403, "permission_denied", "Доступ запрещён."),
        (server_error, 500, "server_error", "Ошибка сервера."),
    ],
)
def test_the_api_error_envelopes_of_the_error_handlers_are_translated(
    db, view, status, code, message
):
    request = RequestFactory().get("/api/v1/purchases")
    with translation.override("ru"):
        response = view(request, None) if view is permission_denied else view(request)

    assert response.status_code == status
    assert json.loads(response.content) == {
        "error": {"code": code, "message": message, "fields": {}}
    }


def test_json_nested_too_deep_is_refused_in_the_callers_language():
    body = b"[" * 100_000 + b"]" * 100_000
    with translation.override("ru"), pytest.raises(ParseError) as caught:
        JSONParser().parse(io.BytesIO(body), "application/json")

    assert str(caught.value.detail) == "Ошибка разбора JSON — слишком глубокая вложенность"

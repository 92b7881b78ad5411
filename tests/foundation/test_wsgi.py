"""The WSGI application gunicorn serves: pages get the full middleware, the API a short one."""

import io
import sys

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from loyalty.project.wsgi import application
from members.models import Member
from tests.helpers import prepared_statement_count

pytestmark = pytest.mark.django_db


def call(path, method="GET", body=b"", **headers):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SCRIPT_NAME": "",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = response_headers

    # As Django's test client does: the request's start and end must not close the test's
    # connection (and with it the test's transaction). The test client reconnects these after
    # each of its own requests, so they are disconnected around this one call.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        answer["body"] = b"".join(response)
        response.close()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
    return answer


def header_names(answer):
    return {name.lower() for name, _value in answer["headers"]}


def test_an_api_call_skips_the_back_office_middleware_but_keeps_its_language(api, pos):
    card = pos.enrol()["card_number"]
    key = api._credentials["HTTP_AUTHORIZATION"]
    found = call(f"/api/v1/members/{card}", authorization=key)
    assert found["status"] == 200
    assert b'"card_number": "' + card.encode() in found["body"].replace(b'":"', b'": "')
    assert "set-cookie" not in header_names(found)  # no session, no CSRF cookie
    assert "content-security-policy" not in header_names(found)
    missing = call("/api/v1/members/2000000000008", authorization=key, accept_language="ru")
    assert missing["status"] == 404
    assert "No member" not in missing["body"].decode()  # the caller asked for Russian
    english = call("/api/v1/members/2000000000008", authorization=key)
    assert b"No member has card" in english["body"]


def test_pages_and_the_api_docs_keep_the_full_middleware():
    login = call("/login/")
    assert login["status"] == 200
    assert "content-security-policy" in header_names(login)
    assert "x-frame-options" in header_names(login)
    docs = call("/api/v1/docs/")
    assert docs["status"] == 200
    assert "content-security-policy" in header_names(docs)


def test_a_body_too_large_is_refused_on_the_short_path(api):
    key = api._credentials["HTTP_AUTHORIZATION"]
    answer = call("/api/v1/purchases", "POST", b"x" * (3 * 1024 * 1024), authorization=key)
    assert answer["status"] == 413
    assert b"request_too_large" in answer["body"]


def test_api_calls_prepare_the_statements_they_repeat_and_pages_do_not(api, pos):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are a PostgreSQL feature")
    card = pos.enrol()["card_number"]
    key = api._credentials["HTTP_AUTHORIZATION"]
    before = prepared_statement_count()
    for _ in range(7):  # prepared at the fifth run of a statement
        assert call(f"/api/v1/members/{card}", authorization=key)["status"] == 200
    after_api = prepared_statement_count()
    for _ in range(7):  # what a page or a job runs is planned afresh every time
        assert Member.objects.filter(card_number=card).exists()
    after_pages = prepared_statement_count()

    assert after_api > before
    assert after_pages == after_api
    assert connection.connection.prepare_threshold is None


def test_what_the_application_loads_at_start_is_out_of_the_garbage_collectors_reach():
    import gc

    from loyalty.api import views  # imported with the URLconf before the freeze

    assert gc.get_freeze_count() > 10_000
    assert all(obj is not views.__dict__ for obj in gc.get_objects())  # frozen: not collected

"""With Redis unreachable the API keeps recording purchases and staff can still sign in (issue 16,
item 2); when Redis comes back the answers are still right.

The product is pointed at a port where nothing listens: in this process by changing the cache
settings (Django builds a new cache from them), and once as a real gunicorn started with
REDIS_URL on that port.
"""

import http.cookiejar
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.core.cache import cache

from loyalty.engine.apikeys import revoke_api_key, shared_redis
from loyalty.management.commands.seed_demo import DEMO_PASSWORD
from loyalty.models import ApiKey, LedgerEntry, Purchase
from loyalty.project.settings import shared_cache
from tests.helpers import BASE_DIR, VENV_BIN, database_url, subprocess_env

CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"  # port 1: nothing listens there


@pytest.fixture
def redis_down(settings):
    """Point the cache (and the sessions on it) at a Redis that does not answer; returns a
    function that brings the test's real cache back (the suite's Redis or in-process cache)."""
    real = settings.CACHES

    def come_back():
        settings.CACHES = real

    settings.CACHES = shared_cache(CLOSED_REDIS_URL)
    settings.SESSION_ENGINE = "loyalty.web.sessions"
    return come_back


def needs_redis():
    if shared_redis() is None:
        pytest.skip("the suite runs without Redis (REDIS_URL unset)")


def sign_in(client, username):
    return client.post("/login/", {"username": username, "password": DEMO_PASSWORD})


def test_with_redis_down_a_purchase_is_recorded_with_its_points(redis_down, pos):
    card = pos.enrol()["card_number"]

    receipt = pos.buy(card, "1000.00", external_id="R-1")

    assert receipt["earned_points"] == 30
    assert Purchase.objects.get().external_id == "R-1"
    assert LedgerEntry.objects.get().points == 30
    assert pos.buy(card, "1000.00", external_id="R-1") == receipt  # a retry is still a replay


def test_with_redis_down_an_unknown_or_revoked_key_is_still_refused(redis_down, api, pos):
    card = pos.enrol()["card_number"]
    revoke_api_key(key_id=ApiKey.objects.get().pk)

    response = api.get(f"/api/v1/members/{card}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_with_redis_down_each_process_still_throttles(redis_down, api, settings):
    settings.API_THROTTLE_RATE = "3/day"

    codes = [api.get("/api/v1/members?phone=%2B79123456789").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]


def test_with_redis_down_staff_sign_in_and_out(redis_down, client, support):
    response = sign_in(client, "support")

    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert home.context["user"].username == "support"
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302  # signed out: back to the sign-in page


def test_with_redis_down_the_lockout_still_counts_failed_sign_ins(redis_down, client, support):
    for _ in range(5):
        client.post("/login/", {"username": "support", "password": "wrong"})

    response = sign_in(client, "support")

    assert response.status_code == 429  # django-axes keeps its counts in the database
    assert client.get("/").status_code == 302


def test_a_key_revoked_while_redis_was_down_stays_refused_when_it_comes_back(
    redis_down, settings, api, pos
):
    come_back = redis_down
    come_back()
    needs_redis()  # with Redis back: the fixture's own cache is always a (closed) Redis
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}").status_code == 200  # the key is remembered now
    settings.CACHES = shared_cache(CLOSED_REDIS_URL)
    # Revoked by another process, whose bump of the shared keys version was lost with Redis.
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert api.get(f"/api/v1/members/{card}").status_code == 401

    come_back()

    assert api.get(f"/api/v1/members/{card}").status_code == 401


def test_a_key_revoked_here_while_redis_was_down_stays_refused_when_it_comes_back(
    redis_down, settings, api, pos
):
    come_back = redis_down
    come_back()
    needs_redis()  # with Redis back: the fixture's own cache is always a (closed) Redis
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}").status_code == 200  # the key is remembered now
    settings.CACHES = shared_cache(CLOSED_REDIS_URL)
    revoke_api_key(key_id=ApiKey.objects.get().pk)

    come_back()

    assert api.get(f"/api/v1/members/{card}").status_code == 401


def test_when_redis_comes_back_purchases_and_throttling_use_it_again(
    redis_down, settings, pos, api
):
    needs_redis()
    come_back = redis_down
    card = pos.enrol()["card_number"]
    assert pos.buy(card, "1000.00")["earned_points"] == 30

    come_back()
    settings.API_THROTTLE_RATE = "2/day"

    assert pos.buy(card, "1000.00")["earned_points"] == 30
    assert pos.buy(card, "1000.00")["earned_points"] == 30
    assert pos.buy(card, "1000.00", expect=429)["error"]["code"] == "throttled"
    assert LedgerEntry.objects.filter(points=30).count() == 3


def test_a_sessions_copy_in_redis_lives_five_minutes_at_most(client, support, settings):
    # A session signed out while Redis was down keeps its old copy in Redis; bounded, it cannot
    # stay signed in for the two weeks a session cookie lasts.
    needs_redis()
    settings.SESSION_ENGINE = "loyalty.web.sessions"
    sign_in(client, "support")
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    full_key = cache.make_and_validate_key(f"django.contrib.sessions.cached_db{session_key}")

    seconds_left = shared_redis().ttl(full_key)

    assert 290 <= seconds_left <= 300


@pytest.fixture
def silent_redis(settings):
    """Point the cache at a port that takes connections and never answers, as a Redis behind a
    route that drops packets; yields a function counting the connections made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    server.setblocking(False)
    accepted = []

    def connections():
        while True:
            try:
                accepted.append(server.accept()[0])
            except BlockingIOError:
                return len(accepted)

    url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    settings.CACHES = shared_cache(url)
    settings.CACHES["default"]["OPTIONS"] = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}
    yield connections
    for connection in accepted:
        connection.close()
    server.close()


def test_after_one_call_to_a_silent_redis_fails_the_next_ones_do_not_wait_for_it(
    silent_redis, api, pos
):
    card = pos.enrol()["card_number"]  # its calls already found Redis silent
    tried = silent_redis()

    assert cache.get("anything", "nothing") == "nothing"
    assert cache.set("anything", 1) is None
    assert api.get(f"/api/v1/members/{card}").status_code == 200

    assert tried >= 1
    assert silent_redis() == tried  # not one connection more


def test_a_key_revoked_while_redis_was_down_is_dropped_by_processes_that_did_not_notice(
    redis_down, settings, api, pos
):
    # This process remembers the key; another one revoked it during an outage (its bump of the
    # shared version lost). The first process to see Redis again bumps the version for all.
    come_back = redis_down
    come_back()
    needs_redis()  # with Redis back: the fixture's own cache is always a (closed) Redis
    card = pos.enrol()["card_number"]
    assert api.get(f"/api/v1/members/{card}").status_code == 200  # the key is remembered now
    version_key = cache.make_and_validate_key("apikeys:version")
    before = int(shared_redis().get(version_key) or 0)
    settings.CACHES = shared_cache(CLOSED_REDIS_URL)
    assert cache.get("anything") is None  # a page's session look-up finds Redis down
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")  # revoked by another process

    come_back()
    assert cache.get("anything") is None  # Redis answers again

    assert int(shared_redis().get(version_key)) == before + 1
    assert api.get(f"/api/v1/members/{card}").status_code == 401


# --- A real server started with Redis unreachable ----------------------------------------------


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server_without_redis(transactional_db, tmp_path):
    """gunicorn serving the product on the test database, with REDIS_URL on a closed port."""
    from django.db import connection

    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "loyalty.project.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=BASE_DIR,
            env=subprocess_env(DATABASE_URL=database_url(connection), REDIS_URL=CLOSED_REDIS_URL),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
        yield base, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def _envelope(code, message):
    return json.dumps({"error": {"code": code, "message": message, "fields": {}}})


def _call(opener, url, **request):
    request = urllib.request.Request(url, **request)  # noqa: S310  (http:// to the test server)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.geturl(), error.read().decode()


def test_a_server_started_with_redis_unreachable_records_purchases_and_signs_staff_in(
    server_without_redis, api, support
):
    base, log_path = server_without_redis
    plain = urllib.request.build_opener()
    key = api._credentials["HTTP_AUTHORIZATION"]

    def api_call(method, path, body=None):
        return _call(
            plain,
            base + path,
            data=body.encode() if body else None,
            method=method,
            headers={"Authorization": key, "Content-Type": "application/json"},
        )

    status, _url, body = api_call("POST", "/api/v1/members", '{"phone": "+79120000001"}')
    assert status == 201, body
    card = re.search(r'"card_number":\s*"(\d+)"', body).group(1)
    status, _url, body = api_call(
        "POST",
        "/api/v1/purchases",
        f'{{"external_id": "R-1", "card_number": "{card}", "amount": "1000.00"}}',
    )
    assert status == 201, body
    assert '"earned_points":30' in body.replace(" ", "")
    assert LedgerEntry.objects.get().points == 30

    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    status, _url, page = _call(browser, base + "/login/")
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "support", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": token}
    )
    status, url, _page = _call(
        browser, base + "/login/", data=form.encode(), headers={"Referer": base + "/login/"}
    )
    assert (status, url) == (200, base + "/")  # signed in, on the home page

    status, _url, health = _call(plain, base + "/healthz")
    assert status == 503  # Redis (the broker) is reported down, not a 500
    assert '"broker": {"ok": false' in health

    # Hostile URLs get the API's envelope through a real server too (gunicorn.conf.py).
    status, _url, body = api_call("GET", "/api/v1/members?email=" + "a" * 5000)
    assert (status, body) == (414, _envelope("uri_too_long", "The address is too long."))
    status, _url, body = api_call("GET", f"/api/v1/members/{card}%00")
    assert status == 400
    assert body == _envelope("invalid", "The address contains a NUL character.")

    log = log_path.read_text()
    assert "Internal Server Error" not in log
    assert log.count("Redis is unreachable") == 1  # one warning, not one per request

"""Bearer API keys, one per store or partner, and per-key throttling."""

import time
import weakref
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions, throttling

from loyalty.api import schema  # noqa: F401  (registers the OpenAPI security scheme)
from loyalty.cache import redis_answered, redis_failed, wake
from loyalty.engine.apikeys import (
    VERSION_KEY,
    find_active_key,
    forget_remembered_keys,
    key_prefix,
    shared_redis,
)
from loyalty.models import ApiKey


class ApiClient:
    """The caller behind a key: a store's point of sale, shop or app."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key):
        self.key = key
        self.store = key.store

    def __str__(self):
        return f"api:{self.store.code}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Give the key as 'Authorization: Bearer KEY'."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        version = _version_and_count(request, raw)
        key = find_active_key(raw, version)
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=5):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now  # the key may be remembered for the next request
        return ApiClient(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyThrottle(throttling.SimpleRateThrottle):
    """A fixed-window counter per key: one INCR per request.

    DRF's default keeps every request time in a list it reads and rewrites on each request,
    which at thousands of requests a minute costs more than the purchase itself.
    """

    scope = "api_key"

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        if request.auth is None:
            return self.cache_format % {"scope": "api_ip", "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        now = time.time()
        self.wait_seconds = self.duration - (now % self.duration)
        count = getattr(request._request, "api_calls_in_window", None)
        if count is None:
            key = self.get_cache_key(request, view)
            if key is None:
                return True
            count = _increment(f"{key}:{int(now // self.duration)}", self.duration + 1)
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds


# INCR the throttle counter (expiring with its window) and read the keys version, atomically.
_GATE_SCRIPT = """
local calls = redis.call('INCR', KEYS[2])
if calls == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {redis.call('GET', KEYS[1]) or '0', calls}
"""
# One registered script per client (connection pool): EVALSHA after the first call.
_gate_scripts = weakref.WeakKeyDictionary()

# While Redis is down each process counts its own requests (so the limit holds per process,
# not across them); the counters start again when Redis answers.
_local_counts = LocMemCache(
    "loyalty-throttle-while-redis-is-down", {"OPTIONS": {"MAX_ENTRIES": 10000}}
)


def _version_and_count(request, raw):
    """One Redis round trip for both gates of a request: the shared API-keys version (which lets
    the key come from memory) and the key's request count in this throttle window, kept on the
    request for ApiKeyThrottle. None without Redis, or while it is down: the key is then read
    from the database (and the request is counted in this process)."""
    client = shared_redis()
    prefix = key_prefix(raw)
    if client is None or prefix is None:
        return None
    version_key = cache.make_and_validate_key(VERSION_KEY)
    throttle = ApiKeyThrottle()
    if throttle.rate is not None:
        window = int(time.time() // throttle.duration)
        counter = f"{throttle.cache_format % {'scope': throttle.scope, 'ident': prefix}}:{window}"
    try:
        wake()
        if throttle.rate is None:
            version = client.get(version_key) or b"0"
        else:
            script = _gate_scripts.get(client)
            if script is None:
                script = _gate_scripts[client] = client.register_script(_GATE_SCRIPT)
            version, calls = script(
                keys=[version_key, cache.make_and_validate_key(counter)],
                args=[throttle.duration + 1],
            )
    except RedisError as exc:
        redis_failed("API key gate", exc)
        forget_remembered_keys()  # a revocation during the outage could not bump the version
        if throttle.rate is not None:
            request._request.api_calls_in_window = _count_locally(
                _local_counts, counter, throttle.duration + 1
            )
        return None
    if throttle.rate is not None:
        request._request.api_calls_in_window = calls
    if redis_answered():
        return None  # the version read may predate the bump for keys changed in the outage
    return version


def _increment(key, ttl):
    """Add one to a counter that expires with its window (one round trip on Redis)."""
    backend = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):
        full_key = cache.make_and_validate_key(key)
        try:
            wake(backend)
            client = backend.get_client(full_key, write=True)
            pipeline = client.pipeline()
            pipeline.incr(full_key)
            pipeline.expire(full_key, ttl, nx=True)
            calls = pipeline.execute()[0]
        except RedisError as exc:
            redis_failed("API throttle", exc, backend)
            return _count_locally(_local_counts, key, ttl)
        redis_answered()
        return calls
    return _count_locally(cache, key, ttl)


def _count_locally(counts, key, ttl):
    if counts.add(key, 1, ttl):
        return 1
    try:
        return counts.incr(key)
    except ValueError:  # expired between add and incr
        counts.add(key, 1, ttl)
        return 1

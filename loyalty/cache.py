"""The shared cache (Redis) is an accelerator: when it is unreachable, requests go on without it.

Everything kept in it can be rebuilt from the database (sessions are written through to the
database, API keys are read from it, throttle windows start again), so an outage degrades speed,
never correctness, and never answers 500. ``RedisCache`` is Django's Redis backend whose every
call answers "nothing cached" when Redis fails; code that talks to the Redis client directly
(``loyalty.api.auth``, ``loyalty.engine.apikeys``) catches ``RedisError`` itself and reports
it through ``redis_failed``.
"""

import functools
import logging
import threading
import time

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# One warning per process per this many seconds while Redis keeps failing, not one per request.
WARN_EVERY_SECONDS = 60

# After a call to a Redis fails, that Redis is not asked again for this long: when it drops
# packets rather than refusing connections, every call would wait out its connect timeout
# (0.5 s), so a request making a few calls would take seconds. The first call after the rest
# tries again.
REST_SECONDS = 5

_lock = threading.Lock()
_outage = {"since": None, "warned_at": None, "failures": 0}
_resting_until = {}  # a Redis (its server addresses) -> monotonic time it may be asked again
_when_back = []


class RedisResting(RedisError):
    """Not asked: this Redis failed a moment ago (``REST_SECONDS``)."""


def _where(backend):
    """The Redis a cache backend (Django's RedisCache, or its client) talks to."""
    return tuple(getattr(backend, "_servers", ()))


def wake(backend=None):
    """Raise RedisResting if the Redis behind ``backend`` (default: the cache's) failed less than
    REST_SECONDS ago; call it first inside the ``try`` that catches RedisError."""
    where = _where(getattr(cache, "_cache", None) if backend is None else backend)
    until = _resting_until.get(where)
    if until is not None and time.monotonic() < until:
        raise RedisResting(f"Redis failed less than {REST_SECONDS} s ago")


def when_redis_comes_back(function):
    """Call ``function()`` once each time Redis answers after an outage (registered at import)."""
    _when_back.append(function)
    return function


def redis_failed(what, exc, backend=None):
    """Note that a call to Redis failed and log it, at most once a minute per process; that
    Redis is left alone for REST_SECONDS."""
    now = time.monotonic()
    with _lock:
        _outage["failures"] += 1
        if _outage["since"] is None:
            _outage["since"] = now
        if not isinstance(exc, RedisResting):  # a skipped call does not lengthen the rest
            where = _where(getattr(cache, "_cache", None) if backend is None else backend)
            _resting_until[where] = now + REST_SECONDS
        warned_at = _outage["warned_at"]
        if warned_at is not None and now - warned_at < WARN_EVERY_SECONDS:
            return
        _outage["warned_at"] = now
        failures, _outage["failures"] = _outage["failures"], 0
    logger.warning(
        "Redis is unreachable (%s: %s); going on without it (%d failed calls since the last "
        "warning): API keys are read from the database, throttling counts per process, "
        "sessions are read from the database",
        what,
        exc,
        failures,
    )


def redis_answered():
    """Note that Redis answered again; the end of an outage is logged, and the functions
    registered with ``when_redis_comes_back`` run, once. Returns True when this call ended one.
    """
    if _outage["since"] is None:  # the usual case: no lock, no work
        return False
    with _lock:
        since, _outage["since"], _outage["warned_at"] = _outage["since"], None, None
        _outage["failures"] = 0
    if since is None:
        return False
    logger.warning("Redis answers again after %.0f s", time.monotonic() - since)
    for function in _when_back:
        function()
    return True


def _tolerant(answer):
    """Wrap a cache method: on RedisError, ``answer(*args, **kwargs)`` is returned instead."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                wake(self)
                result = method(self, *args, **kwargs)
            except RedisError as exc:
                redis_failed(f"cache.{method.__name__}", exc, self)
                return answer(*args, **kwargs)
            redis_answered()
            return result

        return wrapper

    return decorate


def _the_default(key, default=None, version=None):
    return default


def _constant(value):
    return lambda *args, **kwargs: value


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, answering as an empty cache that stores nothing while Redis is down.

    Sessions (``loyalty.sessions``) bound how long an entry lives, so one that could not be
    deleted during an outage does not outlive it by much.
    """

    get = _tolerant(_the_default)(DjangoRedisCache.get)
    get_many = _tolerant(lambda keys, version=None: {})(DjangoRedisCache.get_many)
    has_key = _tolerant(_constant(False))(DjangoRedisCache.has_key)
    add = _tolerant(_constant(False))(DjangoRedisCache.add)
    set = _tolerant(_constant(None))(DjangoRedisCache.set)
    # set_many answers the keys it could not store.
    set_many = _tolerant(lambda data, *args, **kwargs: list(data))(DjangoRedisCache.set_many)
    touch = _tolerant(_constant(False))(DjangoRedisCache.touch)
    delete = _tolerant(_constant(False))(DjangoRedisCache.delete)
    delete_many = _tolerant(_constant(None))(DjangoRedisCache.delete_many)
    clear = _tolerant(_constant(False))(DjangoRedisCache.clear)
    # incr/decr keep raising: a counter that silently answers a made-up number would be wrong.

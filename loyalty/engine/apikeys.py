"""API keys: shown once when created, stored only as a hash, revocable."""

import hashlib
import hmac
import logging
import secrets
import time
import weakref

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from loyalty.cache import redis_failed, wake, when_redis_comes_back
from loyalty.models import ApiKey, audit

logger = logging.getLogger(__name__)

KEY_PREFIX = "lk"


def hash_key(raw):
    # The key has 256 random bits, so a fast hash is as safe as a slow one here and keeps
    # every API call cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic(durable=True)
def create_api_key(*, store, name, staff=None):
    """A new key for ``store``. Returns (ApiKey, raw key); the raw key is never stored."""
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        store=store, name=name, prefix=prefix, key_hash=hash_key(raw), created_by=staff
    )
    audit(actor=staff, action="apikey.create", obj=key, after={"store": store.code, "name": name})
    return key, raw


@transaction.atomic(durable=True)
def revoke_api_key(*, key_id, staff=None):
    """Revoke a key at once; requests with it are refused from now on."""
    key = ApiKey.objects.select_for_update().get(pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit(
            actor=staff,
            action="apikey.revoke",
            obj=key,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at.isoformat()},
        )
    return key


def key_prefix(raw):
    """The public part of a key that finds its row; None when ``raw`` is not shaped like one."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or len(parts[1]) > 16:
        return None
    return parts[1]


def find_active_key(raw, version=None):
    """The active key matching ``raw``, or None. Constant-time comparison of the hash.

    With ``version`` (the shared keys version, see ``shared_redis``), a key read before is taken
    from this process's memory while nobody has changed a key or a store since: a revocation
    bumps the version, so it still takes effect on the very next request, in every process.
    """
    prefix = key_prefix(raw)
    if prefix is None:
        return None
    key = _remembered(prefix, version)
    if key is None:
        key = ApiKey.objects.select_related("store").filter(prefix=prefix).first()
        if key is not None and version is not None:
            _REMEMBERED[prefix] = (key, version, time.monotonic())
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, hash_key(raw)):
        return None
    return key


# prefix -> (key with its store, keys version it was read at, when). Only keys that exist are
# kept, so junk prefixes cannot fill it. Entries also age out, as a second line of defence.
_REMEMBERED = {}
REMEMBER_SECONDS = 60
VERSION_KEY = "apikeys:version"


def forget_remembered_keys():
    """Read every key afresh from the database from now on.

    Called when Redis fails: a key revoked while Redis was down could not bump the shared
    version, so what this process remembers may be out of date when Redis comes back.
    """
    _REMEMBERED.clear()


def _remembered(prefix, version):
    entry = _REMEMBERED.get(prefix)
    if entry is None or version is None:
        return None
    key, read_at_version, read_at = entry
    if read_at_version != version or time.monotonic() - read_at > REMEMBER_SECONDS:
        return None
    return key


def shared_redis():
    """The Redis client behind the cache, or None when the cache is not shared (embedded mode).

    Without a shared cache there is no way to tell other processes that a key was revoked, so
    every request then reads its key from the database.
    """
    backend = getattr(cache, "_cache", None)
    if backend is None or not hasattr(backend, "get_client"):
        return None
    # Django builds a new client object (with its command tables) on every get_client(); the
    # connection pool behind it is shared, so one client per backend serves every request.
    client = _clients.get(backend)
    if client is None:
        client = _clients[backend] = backend.get_client(VERSION_KEY, write=True)
    return client


# By the backend object itself, not its id(): a new backend (settings changed in a test) may
# reuse a freed one's id, and must not get its client for another Redis.
_clients = weakref.WeakKeyDictionary()


def keys_changed():
    """Make every process read keys and stores afresh: called when either changes.

    Bumped at once (this connection sees its own change) and again after commit, so a process
    that re-read the old row between the two bumps drops it too.
    """
    client = shared_redis()
    if client is None:
        return
    full_key = cache.make_and_validate_key(VERSION_KEY)

    def bump():
        try:
            wake()
            client.incr(full_key)
        except RedisError as exc:  # keys read before age out within REMEMBER_SECONDS
            forget_remembered_keys()
            redis_failed("telling other processes that API keys changed", exc)
            logger.warning(
                "Redis is down: other processes may accept a changed or revoked API key for up "
                "to %d s more",
                REMEMBER_SECONDS,
            )

    bump()
    transaction.on_commit(bump)


@when_redis_comes_back
def _keys_may_have_changed_meanwhile():
    """A key revoked while Redis was down could not bump the shared version, and a process
    that served no API call meanwhile still remembers it: the first process to see Redis
    answer again bumps the version for every process."""
    client = shared_redis()
    if client is None:
        return
    try:
        client.incr(cache.make_and_validate_key(VERSION_KEY))
    except RedisError as exc:
        redis_failed("telling other processes that API keys may have changed", exc)

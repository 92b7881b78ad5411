"""Back-office sessions: read from the shared cache, written through to the database.

Django's ``cached_db`` store, with the cache's copy of a session kept for a few minutes only.
While Redis is down the cache stores and deletes nothing (``loyalty.engine.cache``) and sessions
come from the database; a session signed out or changed during the outage may still have its old
copy in Redis when Redis comes back, and that copy must not outlive the outage by long.
"""

from django.contrib.sessions.backends import cached_db

# The longest a session's copy lives in the cache; after it, one query reads it again. At one
# read per signed-in person per five minutes the database does not notice.
CACHE_SECONDS = 300


class _ShortLived:
    """The session cache, with every entry's lifetime bounded by CACHE_SECONDS."""

    def __init__(self, cache):
        self._cache = cache

    def set(self, key, value, timeout):
        return self._cache.set(key, value, min(timeout, CACHE_SECONDS))

    async def aset(self, key, value, timeout):
        return await self._cache.aset(key, value, min(timeout, CACHE_SECONDS))

    def __contains__(self, key):
        return key in self._cache

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def __str__(self):
        return str(self._cache)


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._cache = _ShortLived(self._cache)

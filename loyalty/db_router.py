"""Reads that may lag a little (analytics, exports) go to a replica when one is configured.

Code opts in with ``with replica_reads():``; everything else, and every write, uses the primary.
Without DATABASE_REPLICA_URL the router changes nothing.
"""

import contextlib
import contextvars

from django.conf import settings

_use_replica = contextvars.ContextVar("use_replica", default=False)


@contextlib.contextmanager
def replica_reads():
    token = _use_replica.set(True)
    try:
        yield
    finally:
        _use_replica.reset(token)


def replica_alias():
    return "replica" if "replica" in settings.DATABASES else None


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _use_replica.get():
            return replica_alias()
        return None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, **hints):
        return db == "default"

"""Prepared statements where a plan made once serves every value (PostgreSQL)."""

from contextlib import contextmanager

from django.conf import settings
from django.db import connection

THRESHOLD = 5  # a statement is prepared at its fifth run on a connection


@contextmanager
def prepared_statements():
    """Within this block (or a view decorated with it), psycopg prepares the statements the
    connection runs a fifth time, and PostgreSQL stops parsing and planning them.

    For code whose every statement finds rows by a key (card, phone, member, receipt): the API,
    the member page. Not for searches, lists with filters, analytics or jobs, whose plans depend
    on the values: a prepared member search falls back to a generic plan that reads the whole
    members table for a rare term. Off with DB_PREPARED_STATEMENTS=false and on SQLite.
    """
    if not settings.PREPARED_STATEMENTS or connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    raw.prepare_threshold = THRESHOLD
    try:
        yield
    finally:
        raw.prepare_threshold = None  # Django's default: other code plans afresh

"""Where generated rows go: COPY on PostgreSQL, batched ``executemany`` on SQLite.

A sink has one method per table (``member``, ``purchase``, ``lot``, ``entry``, ``allocation``)
taking a row tuple in the order of that table's columns below, ``ts(seconds)`` formatting epoch
seconds as the database's timestamp text, and ``close(failed=False)``.
"""

from datetime import datetime, timedelta

from loyalty.engine.ledger import ENTRY_COLUMNS, LOT_COLUMNS  # the ledger's own lists

MEMBER_COLUMNS = (
    "id", "card_number", "phone", "email", "first_name", "last_name", "birth_date", "language",
    "marketing_consent", "consent_at", "consent_source", "consent_text", "status", "tier_id",
    "tier_since", "below_tier_since", "points_balance", "points_debt", "enrolled_at",
    "enrolled_store_id", "enrolment_channel", "external_ref", "referral_code", "referred_by_id",
    "merged_into_id", "enrolled_by_id", "search_text",
)  # fmt: skip
PURCHASE_COLUMNS = (
    "id", "store_id", "external_id", "member_id", "occurred_at", "channel", "amount",
    "discount_amount", "redeemed_points", "redeemed_value", "paid_amount", "earned_points",
    "coupon_code", "tier_id", "refunded_amount", "reversed_points", "returned_points",
    "qualifying_amount", "is_historical", "fingerprint", "response", "created_at",
)  # fmt: skip
ALLOCATION_COLUMNS = ("id", "purchase_id", "lot_id", "points", "returned")

TABLES = {
    "member": ("members_member", MEMBER_COLUMNS),
    "purchase": ("loyalty_purchase", PURCHASE_COLUMNS),
    "lot": ("loyalty_pointslot", LOT_COLUMNS),
    "entry": ("loyalty_ledgerentry", ENTRY_COLUMNS),
    "allocation": ("loyalty_lotallocation", ALLOCATION_COLUMNS),
}


class _TimeFormat:
    """Epoch seconds as the text each database stores (formatted once per minute)."""

    def __init__(self, suffix):
        self.suffix = suffix
        self.minutes = {}

    def __call__(self, seconds):
        minute, secs = divmod(seconds, 60)
        text = self.minutes.get(minute)
        if text is None:
            moment = datetime(1970, 1, 1) + timedelta(minutes=minute)
            text = self.minutes[minute] = moment.strftime("%Y-%m-%d %H:%M:")
        return f"{text}{secs:02d}{self.suffix}"


class PostgresSink:
    """One COPY per table, each on its own connection, all open at once.

    The loading sessions run with ``session_replication_role = replica``: foreign-key triggers
    stay quiet (rows of one member arrive on five connections in five transactions, so a check
    could not see its parent anyway); the generator writes only ids it made itself.
    """

    def __init__(self, dsn):
        import contextlib

        import psycopg

        self.ts = _TimeFormat("+00")
        self.connections = []
        self.stack = contextlib.ExitStack()
        try:
            for key, (table, columns) in TABLES.items():
                conn = psycopg.connect(dsn)
                self.connections.append(conn)
                conn.execute("SET session_replication_role = replica")
                conn.execute("SET synchronous_commit = off")
                copy = self.stack.enter_context(
                    conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
                )
                setattr(self, key, copy.write_row)
        except BaseException:
            self.close(failed=True)
            raise

    def close(self, failed=False):
        try:
            if failed:
                for conn in self.connections:
                    conn.cancel_safe()
                self.stack.pop_all()
            else:
                self.stack.close()
        finally:
            for conn in self.connections:
                if failed:
                    conn.close()
                else:
                    conn.commit()
                    conn.close()


class SqliteSink:
    """Batched executemany on the Django connection, inside the caller's transaction."""

    BATCH = 5000

    def __init__(self, cursor):
        self.ts = _TimeFormat("")
        self.cursor = cursor
        self.buffers = {key: [] for key in TABLES}
        for key in TABLES:
            setattr(self, key, self._appender(key))

    def _appender(self, key):
        buffer = self.buffers[key]

        def append(row):
            buffer.append(row)
            if len(buffer) >= self.BATCH:
                self.flush()

        return append

    def flush(self):
        # Parents before children, so deferred foreign keys are satisfied at commit anyway.
        for key, (table, columns) in TABLES.items():
            rows = self.buffers[key]
            if rows:
                marks = ", ".join("?" * len(columns))
                self.cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    rows,
                )
                rows.clear()

    def close(self, failed=False):
        if not failed:
            self.flush()

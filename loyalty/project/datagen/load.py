"""The load: read what exists, run the generator into a sink, then the surveys app's step.

On PostgreSQL the plain indexes of the loaded tables are dropped for the COPY and rebuilt
afterwards (their definitions are kept in a table meanwhile, so a load that dies loses none);
on SQLite the rows go in inside one transaction.
"""

import time

from loyalty.engine.db import by_dialect
from loyalty.project.datagen.member import Generator
from loyalty.project.datagen.plan import base_data
from loyalty.project.datagen.sinks import TABLES, PostgresSink, SqliteSink

STASH = "datagen_dropped_index"  # index definitions kept while a load runs, so none is lost


def generate(plan, *, using="default", progress=print):
    """Make ``plan.members`` members and ``plan.purchases`` receipts with their ledger.

    Returns the generator's counts and the seconds each phase took.
    """
    from django.db import connections

    connection = connections[using]
    timings = {}
    started = time.monotonic()
    program, stores = base_data()
    with connection.cursor() as cursor:
        ids = _next_ids(cursor)
        taken = _taken(cursor)
    timings["prepare"] = time.monotonic() - started
    world = {"program": program, "stores": stores, "ids": ids, "taken": taken}

    load = by_dialect(postgres=_generate_postgres, sqlite=_generate_sqlite, using=using)
    generator = load(plan, using, connection, world, timings, progress)
    phase = time.monotonic()
    surveys_and_complaints_hook(
        using=using,
        member_ids=generator.member_id_range,
        purchase_ids=generator.purchase_id_range,
        seed=plan.seed,
        now=plan.now,
        progress=progress,
    )
    timings["surveys"] = time.monotonic() - phase
    timings["total"] = time.monotonic() - started
    return generator.stats, timings


def _generate_sqlite(plan, using, connection, world, timings, progress):
    from django.db import transaction

    phase = time.monotonic()
    with transaction.atomic(using=using), connection.cursor() as cursor:
        sink = SqliteSink(cursor)
        generator = Generator(plan, sink=sink, **world)
        generator.run(progress)
        sink.close()
    timings["load"] = time.monotonic() - phase
    return generator


def _generate_postgres(plan, using, connection, world, timings, progress):
    import psycopg

    dsn = _dsn(connection)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SET lock_timeout = 0")
        _restore_indexes(admin, progress)  # an earlier load that died left some dropped
        phase = time.monotonic()
        _drop_indexes(admin, progress)
        try:
            generator = _copy(plan, dsn, world, progress)
            timings["load"] = time.monotonic() - phase
            progress(f"rows copied in {timings['load']:.0f} s; rebuilding indexes")
        finally:
            phase = time.monotonic()
            _restore_indexes(admin, progress)
            timings["indexes"] = time.monotonic() - phase
        phase = time.monotonic()
        _reset_sequences_and_analyze(admin)
        timings["analyze"] = time.monotonic() - phase
    return generator


def _dsn(connection):
    """The Django connection's libpq string, password included (COPY opens its own sessions)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        connection.connection.info.dsn, password=connection.settings_dict.get("PASSWORD") or None
    )


def _copy(plan, dsn, world, progress):
    failed = True
    sink = PostgresSink(dsn)
    try:
        generator = Generator(plan, sink=sink, **world)
        generator.run(progress)
        failed = False
    finally:
        sink.close(failed=failed)
    return generator


def _reset_sequences_and_analyze(admin):
    for table, _columns in TABLES.values():
        admin.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )
        admin.execute(f"VACUUM (ANALYZE) {table}")


def _next_ids(cursor):
    ids = {}
    for key, (table, _columns) in TABLES.items():
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")  # noqa: S608
        ids[key] = cursor.fetchone()[0]
    return ids


def _taken(cursor):
    taken = {}
    for key, column in (("card", "card_number"), ("phone", "phone"), ("referral", "referral_code")):
        cursor.execute(f"SELECT {column} FROM members_member")  # noqa: S608
        taken[key] = {row[0] for row in cursor.fetchall()}
    return taken


def _plain_indexes(cursor):
    """(name, definition) of the indexes on the loaded tables that no constraint owns."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY t.relname, i.relname
        """,
        [[table for table, _columns in TABLES.values()]],
    )
    return cursor.fetchall()


def _drop_indexes(admin, progress):
    """Keep the plain indexes' definitions in the stash table, then drop them for the load."""
    indexes = _plain_indexes(admin.cursor())
    admin.execute(f"CREATE TABLE {STASH} (name text PRIMARY KEY, definition text)")
    admin.cursor().executemany(f"INSERT INTO {STASH} VALUES (%s, %s)", indexes)  # noqa: S608
    # Building an index once from sorted rows is far cheaper than growing it row by row.
    for name, _definition in indexes:
        admin.execute(f'DROP INDEX IF EXISTS "{name}"')
    progress(f"dropped {len(indexes)} indexes for the load; they are rebuilt afterwards")


def _restore_indexes(admin, progress):
    """Rebuild every index a load dropped, including those of an earlier load that died."""
    admin.execute(f"CREATE TABLE IF NOT EXISTS {STASH} (name text PRIMARY KEY, definition text)")
    rows = admin.execute(f"SELECT name, definition FROM {STASH} ORDER BY name").fetchall()  # noqa: S608
    admin.execute("SET maintenance_work_mem = '1GB'")
    admin.execute("SET max_parallel_maintenance_workers = 2")
    for name, definition in rows:
        admin.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        admin.execute(f"DELETE FROM {STASH} WHERE name = %s", [name])  # noqa: S608
    admin.execute(f"DROP TABLE {STASH}")
    if rows:
        progress(f"rebuilt {len(rows)} indexes")


def surveys_and_complaints_hook(*, using, member_ids, purchase_ids, seed, now, progress):
    """Survey answers and complaints for the generated members: left to the surveys app.

    When ``surveys.datagen.generate`` exists it is called with these same keyword arguments
    (``member_ids`` and ``purchase_ids`` are half-open id ranges of the rows just made); until
    then this step says it was skipped.
    """
    try:
        from surveys import datagen as surveys_datagen
    except ImportError:
        surveys_datagen = None
    generate = getattr(surveys_datagen, "generate", None)
    if generate is None:
        progress("surveys and complaints: skipped (surveys.datagen.generate does not exist yet)")
        return None
    return generate(
        using=using,
        member_ids=member_ids,
        purchase_ids=purchase_ids,
        seed=seed,
        now=now,
        progress=progress,
    )

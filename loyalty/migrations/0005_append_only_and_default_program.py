"""Ledger entries are append-only in the database too, and the default program exists."""

from django.db import migrations

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
"""


def append_only_sql(vendor, table):
    if vendor == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();"
        ]
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
    ]


def drop_sql(vendor, table):
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"]
    return [f"DROP TRIGGER IF EXISTS {table}_no_update;", f"DROP TRIGGER IF EXISTS {table}_no_delete;"]


APPEND_ONLY_TABLES = ["loyalty_ledgerentry"]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        for statement in append_only_sql(vendor, table):
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for table in APPEND_ONLY_TABLES:
        for statement in drop_sql(schema_editor.connection.vendor, table):
            schema_editor.execute(statement)


def create_default_program(apps, schema_editor):
    from loyalty.defaults import install_default_program

    install_default_program(apps.get_model("loyalty", "ProgramSettings"), apps.get_model("loyalty", "Tier"))


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0004_ledgerentry_member_ledgerentry_staff_and_more"),
        ("members", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(create_default_program, migrations.RunPython.noop),
    ]

"""Fill search_text and, on PostgreSQL, index it with trigrams for search as you type."""

from django.db import migrations


def fill_search_text(apps, schema_editor):
    Member = apps.get_model("members", "Member")
    for member in Member.objects.iterator():
        parts = (
            member.first_name,
            member.last_name,
            member.email,
            str(member.phone or "").lstrip("+"),
            member.card_number,
        )
        member.search_text = " ".join(part for part in parts if part).lower()
        member.save(update_fields=["search_text"])


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS member_search_trgm_idx ON members_member "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS member_search_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("members", "0002_search_text")]

    operations = [
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        migrations.RunPython(create_trigram_index, drop_trigram_index),
    ]

"""Indexes for segment counts: (store, member) for "bought at these stores", and the refunded
receipts of a member for spend net of refunds (a partial index: refunds are a few receipts in a
hundred).

On PostgreSQL they are built CONCURRENTLY, so receipts keep coming in while the (store, member)
index reads the purchases table (minutes at 10M receipts); hence a non-atomic migration.
"""

from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """AddIndex, built with CREATE INDEX CONCURRENTLY on PostgreSQL (SQLite has no such thing)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("loyalty", "0008_referral_credit_apart"),
        ("members", "0005_birthday_index"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="purchase",
            index=models.Index(fields=["store", "member"], name="purchase_store_member_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="purchase",
            index=models.Index(
                condition=models.Q(("refunded_amount__gt", 0)),
                fields=["member", "occurred_at"],
                name="purchase_refunded_idx",
            ),
        ),
    ]

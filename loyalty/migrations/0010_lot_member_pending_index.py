"""The pending lots of a member (points.balance_from_cache), built CONCURRENTLY on PostgreSQL so
that purchases keep writing lots while it reads them; hence a non-atomic migration."""

import importlib

from django.db import migrations, models

AddIndexConcurrentlyOnPostgres = importlib.import_module(
    "loyalty.migrations.0009_segment_indexes"
).AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("loyalty", "0009_segment_indexes"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="pointslot",
            index=models.Index(
                condition=models.Q(("remaining__gt", 0)),
                fields=["member", "available_from"],
                name="lot_member_pending_idx",
            ),
        ),
    ]

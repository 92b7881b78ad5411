"""The members who are not active, for segment counts of purchase criteria alone (the snapshot's
buyers less these). A few thousand entries; building it reads the members table once (about a
second at 1M members, during which member rows cannot be changed)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0013_purchase_free_history'),
        ('members', '0007_importjob_enqueued_at'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='member',
            index=models.Index(condition=models.Q(('status', 'active'), _negated=True), fields=['id'], name='member_not_active_idx'),
        ),
    ]

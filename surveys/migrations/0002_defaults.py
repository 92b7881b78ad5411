"""The default NPS, satisfaction and churn surveys, and complaint categories with their SLAs."""

from django.db import migrations


def create_defaults(apps, schema_editor):
    from surveys.defaults import install_default_surveys

    install_default_surveys(apps.get_model("surveys", "Survey"),
                            apps.get_model("surveys", "ComplaintCategory"))


class Migration(migrations.Migration):
    dependencies = [("surveys", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]

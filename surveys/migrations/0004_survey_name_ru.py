"""A survey's name per language: the Russian name, filled in for the default surveys."""

from django.db import migrations, models


def name_default_surveys(apps, schema_editor):
    from surveys.defaults import install_default_surveys

    install_default_surveys(
        apps.get_model("surveys", "Survey"), apps.get_model("surveys", "ComplaintCategory")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0003_survey_send"),
    ]

    operations = [
        migrations.AddField(
            model_name="survey",
            name="name_ru",
            field=models.CharField(blank=True, max_length=200, verbose_name="name in Russian"),
        ),
        migrations.RunPython(name_default_surveys, migrations.RunPython.noop),
    ]

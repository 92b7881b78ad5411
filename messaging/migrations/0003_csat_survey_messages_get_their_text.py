"""Satisfaction-survey messages queued before they had a text get it, so they are still sent.

Before migration 0002 a resolved complaint queued its CSAT message with only the survey link's
raw token in the context (``{"survey_token": ...}``); the renderer now expects the subject and
text that ``surveys.messages.survey_message`` writes, and would give such a row up as an empty
text. This writes the same subject and text (and link) into those rows, in the member's language.
Rows already given up for that reason are queued again; their earlier attempts never reached a
provider, so they start from none.

The wording is written out here rather than imported, so that a later change to the survey
messages cannot change or break this migration; the msgids are the catalog's, and this file
keeps them there.
"""

from django.conf import settings
from django.db import migrations
from django.utils import translation
from django.utils.translation import gettext

BATCH = 500  # one UPDATE per row, committed with the migration; few rows in practice


def csat_text(language, url):
    """The CSAT invitation as ``surveys.messages.survey_message(..., kind="csat")`` wrote it."""
    with translation.override(language):
        return {
            "subject": gettext("How did we do?"),
            "text": gettext("We have resolved your request. How satisfied are you? %(url)s")
            % {"url": url},
            "survey_url": url,
        }


def write_csat_texts(apps, schema_editor):
    Outbox = apps.get_model("messaging", "Outbox")
    site = settings.SITE_URL.rstrip("/")
    legacy = (
        Outbox.objects.filter(purpose="csat_survey", status__in=["pending", "failed"])
        .filter(context__has_key="survey_token")
        .exclude(context__has_key="text")
        .select_related("member")
        .order_by("pk")
    )
    for item in legacy.iterator(chunk_size=BATCH):
        url = f"{site}/s/{item.context['survey_token']}/"
        item.context = csat_text(item.member.language, url)
        item.status = "pending"
        item.attempts = 0
        item.save(update_fields=["context", "status", "attempts"])


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0006_search_statistics"),
        ("messaging", "0002_outbox_purposes_known_and_text_failures"),
    ]

    operations = [migrations.RunPython(write_csat_texts, migrations.RunPython.noop)]

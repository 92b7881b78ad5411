"""The texts of survey invitations: the member's link and what the message says around it.

Services (a resolved complaint's CSAT, an ad-hoc send) and jobs (NPS, reminders) all build their
messages here, so the wording of a survey message has one home below both.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _


def survey_url(raw_token):
    return f"{settings.SITE_URL.rstrip('/')}/s/{raw_token}/"


def survey_message(language, url, kind="nps", reminder=False):
    """Subject and text of a survey invitation, in the member's language."""
    with translation.override(language):
        if kind == "csat":
            subject = _("How did we do?")
            text = _("We have resolved your request. How satisfied are you? %(url)s")
        elif kind == "churn":
            subject = _("We miss you")
            text = _("We have not seen you for a while. Tell us why in one click: %(url)s")
        elif reminder:
            subject = _("A reminder: one question, ten seconds")
            text = _("You have not answered yet: how likely are you to recommend us? %(url)s")
        else:
            subject = _("One question, ten seconds")
            text = _("How likely are you to recommend us to a friend? %(url)s")
        return {"subject": str(subject), "text": str(text) % {"url": url}, "survey_url": url}

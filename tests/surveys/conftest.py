import pytest
from django.utils import timezone

from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey
from surveys.services import create_invitation
from tests.factories import MemberFactory


@pytest.fixture
def surveys(stores):
    """The default surveys and complaint categories (a transactional test empties tables)."""
    install_default_surveys(Survey, ComplaintCategory)
    return {survey.code: survey for survey in Survey.objects.all()}


@pytest.fixture
def member(stores):
    return MemberFactory(
        phone="+79127770011",
        first_name="Анна",
        email="anna@example.com",
        marketing_consent=True,
        store=stores["MSK-01"],
    )


@pytest.fixture
def invite(surveys, member):
    """A fresh NPS link for the member: returns the raw token."""

    def make(code="nps", who=None, now=None):
        _invitation, raw = create_invitation(
            survey=surveys[code], member=who or member, now=now or timezone.now()
        )
        return raw

    return make

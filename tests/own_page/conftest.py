import re

import pytest
from django.test import Client

# Members made by enrolment, purchases by the purchase service; a real SMTP server.
from tests.jobs.conftest import at, buy, enrol  # noqa: F401
from tests.messaging.conftest import sms_sent, smtp_server  # noqa: F401

LINK = re.compile(r"http\S+/me/in/[A-Za-z0-9_\-]+/")


@pytest.fixture
def signed_in(stores):
    """A test client signed in as ``member`` through a real link (the service's)."""
    from members.self_service import SESSION_COOKIE, _new_link, sign_in_with_link

    def make(member):
        from django.db import transaction

        with transaction.atomic():
            token = _new_link(member, "email", at_now())
        _member, key = sign_in_with_link(token=token, address="10.0.0.1")
        client = Client()
        client.cookies[SESSION_COOKIE] = key
        return client

    return make


def at_now():
    from django.utils import timezone

    return timezone.now()

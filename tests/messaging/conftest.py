import email
import socket
from email.policy import default as default_policy

import pytest

# The job tests' fixtures (members, purchases, job runs), shared by import.
from tests.jobs.conftest import buy, enrol, run  # noqa: F401, E402


class SmtpSink:
    """What a real SMTP server (aiosmtpd, on a free local port) received."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self):
        return [
            email.message_from_bytes(envelope.content, policy=default_policy)
            for envelope in self.envelopes
        ]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server; Django's SMTP backend is pointed at it."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    controller.stop()


@pytest.fixture
def sms_sent():
    from messaging import sms

    sms.sent.clear()
    yield sms.sent
    sms.sent.clear()

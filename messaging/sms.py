"""SMS backends. The default records each message in the log and sends nothing.

A provider is one class: subclass ``BaseSmsBackend``, implement ``send`` to call the provider's
API and return its message id, and name the class in the SMS_BACKEND setting.
"""

import abc

from django.conf import settings
from django.utils.module_loading import import_string

# What the recording backend "sent" in this process, newest last (tests read it, like
# Django's locmem mail outbox).
sent = []


class BaseSmsBackend(abc.ABC):
    @abc.abstractmethod
    def send(self, *, phone, text):
        """Send one SMS; return the provider's id for it. Raise on failure (it is retried)."""


class RecordingBackend(BaseSmsBackend):
    """Sends nothing: the message log row is the record (the embedded mode and tests)."""

    def send(self, *, phone, text):
        sent.append({"phone": phone, "text": text})
        return f"recorded-{len(sent)}"


def get_backend():
    return import_string(settings.SMS_BACKEND)()

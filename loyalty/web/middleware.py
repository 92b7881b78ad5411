import logging
from urllib.parse import parse_qsl, unquote

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.urls import get_resolver
from django.utils import translation
from django.utils.translation import gettext

from loyalty.api.errors import error_body
from loyalty.engine.db import prepared_statements
from loyalty.web.taskqueue import BROKER_ERRORS

logger = logging.getLogger(__name__)

# The longest path and query string served. Longer ones are refused with 414 before any view
# runs (gunicorn.conf.py lets gunicorn pass up to 8 KB through, so that the answer is ours).
MAX_URL_LENGTH = 4096
# How long a caller is told to wait when the broker (Redis) is unreachable: a restart's length.
RETRY_UNAVAILABLE_SECONDS = 30


def _api_error(status, code, message, fields=None):
    return JsonResponse(error_body(code, message, fields), status=status)


def _fields_holding_nul(query, message):
    """The query parameters a NUL was found in, named as a form error names its fields."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return {name: [message] for name, value in pairs if "\x00" in name + value}


class HostileUrlMiddleware:
    """Refuse a URL no view can serve before any view sees it: a NUL byte in the path or the
    query string (400: PostgreSQL cannot even compare text holding one) or a URL over 4 KB
    (414). The API answers with its error envelope, pages with the site's 400 page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if len(request.path_info) + len(query) > MAX_URL_LENGTH:
            message = gettext("The address is too long.")
            if request.path.startswith("/api/"):
                return _api_error(414, "uri_too_long", message)
            return HttpResponse(message, status=414, content_type="text/plain; charset=utf-8")
        if "\x00" in request.path or "\x00" in unquote(query):
            message = gettext("The address contains a NUL character.")
            if request.path.startswith("/api/"):
                return _api_error(400, "invalid", message, _fields_holding_nul(query, message))
            handler = get_resolver().resolve_error_handler(400)
            return handler(request, SuspiciousOperation(message))
        return self.get_response(request)


class ApiLanguageMiddleware:
    """The API speaks English unless the caller asks for another language (Accept-Language).

    The back-office's default language (Russian) is for people; integrators read logs. The
    API docs page is for people too: it follows the back-office's language choice.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.path.startswith("/api/")
            and not request.path.startswith("/api/v1/docs/")
            and not request.headers.get("Accept-Language")
        ):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
        return self.get_response(request)


class ApiBodyLimitMiddleware:
    """Refuse an API body larger than DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return JsonResponse(
                    {
                        "error": {
                            "code": "request_too_large",
                            "message": gettext("The request body is too large."),
                            "fields": {},
                        }
                    },
                    status=413,
                )
        return self.get_response(request)


class PreparedStatementsMiddleware:
    """API requests prepare the statements they repeat (``prepared_statements``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with prepared_statements():
            return self.get_response(request)


# SQLSTATE classes of a connection that is gone: 08 connection exception, 57 operator
# intervention (57P01 the server is shutting down or ended the session, 57P02 it crashed).
LOST_CONNECTION_CLASSES = ("08", "57")


def _database_lost(exception):
    """True when ``exception`` says the database connection is gone (the server was restarted,
    failed over or ended the session) rather than that a statement was wrong."""
    if isinstance(exception, InterfaceError):  # "the connection is closed"
        return True
    if not isinstance(exception, OperationalError):
        return False
    cause = exception.__cause__
    state = getattr(cause, "sqlstate", None)
    if state:
        return state[:2] in LOST_CONNECTION_CLASSES
    # psycopg's own errors without a server's answer: the socket closed, reset or refused.
    return type(cause).__module__.startswith("psycopg")


class ServiceDownMiddleware:
    """The safety net under ``loyalty.web.taskqueue``: a view that reaches an unreachable broker or
    Redis without catching it, or whose database connection was dropped in the middle of the
    request, answers 503 with Retry-After, never 500 (the API with its ``unavailable``
    envelope, pages with the site's 503 page in the reader's language). The request's
    transaction was not committed, so nothing of it is written; Django opens a new connection
    for the next request (tests/faults/test_database_dropped.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, BROKER_ERRORS) and not _database_lost(exception):
            return None
        logger.warning(
            "%s %s: a service is unreachable: %s", request.method, request.path, exception
        )
        if request.path.startswith("/api/"):
            message = gettext("A service the API needs is unreachable. Try again shortly.")
            response = _api_error(503, "unavailable", message)
        else:
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_UNAVAILABLE_SECONDS)
        return response

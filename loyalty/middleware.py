from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import translation
from django.utils.translation import gettext


class ApiLanguageMiddleware:
    """The API speaks English unless the caller asks for another language (Accept-Language).

    The back-office's default language (Russian) is for people; integrators read logs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and not request.headers.get("Accept-Language"):
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
    """API requests prepare the statements a connection runs a fifth time (PostgreSQL).

    Every API statement finds rows by a key (card, phone, member, receipt): a plan made once
    serves every value, and PostgreSQL stops parsing and planning the purchase path's statements
    on every request. Back-office pages and jobs keep planning each statement for its values:
    a prepared member search would fall back to a generic plan that reads the whole members
    table for a rare term. DB_PREPARED_STATEMENTS=false turns this off.
    """

    THRESHOLD = 5

    def __init__(self, get_response):
        self.get_response = get_response
        self.enabled = settings.PREPARED_STATEMENTS and connection.vendor == "postgresql"

    def __call__(self, request):
        if not self.enabled:
            return self.get_response(request)
        connection.ensure_connection()
        raw = connection.connection
        raw.prepare_threshold = self.THRESHOLD
        try:
            return self.get_response(request)
        finally:
            raw.prepare_threshold = None  # Django's default: the next page plans afresh

from django.conf import settings
from django.http import JsonResponse
from django.utils import translation
from django.utils.translation import gettext

from loyalty.db import prepared_statements


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

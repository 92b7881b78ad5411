"""Every API error has one shape: {"error": {"code", "message", "fields"}} (SPEC section 4)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response

# A "busy" member is locked by another call that takes milliseconds: a second later it is free.
RETRY_BUSY_SECONDS = 1

CODES_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "business_rule",
    429: "throttled",
}


def error_body(code, message, fields=None):
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


def _flatten(detail):
    """DRF's nested error detail as {field: [messages]} with plain strings."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [str(item) for item in detail]
        return [_flatten(item) for item in detail]
    return [str(detail)]


def exception_handler(exc, context):
    from loyalty.engine.errors import LoyaltyError

    if isinstance(exc, LoyaltyError):
        response = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
        if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:  # "busy": a lock wait ran out
            response["Retry-After"] = str(RETRY_BUSY_SECONDS)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    code = CODES_BY_STATUS.get(exc.status_code, "error")
    fields = {}
    if isinstance(exc, exceptions.ValidationError):
        flat = _flatten(exc.detail)
        if isinstance(flat, dict):
            non_field = flat.pop("non_field_errors", None)
            fields = flat
            message = non_field[0] if non_field else _("The request has invalid fields.")
        else:
            message = flat[0] if flat else _("The request is invalid.")
    elif isinstance(exc, exceptions.ParseError):
        code, message = "malformed_request", _("The request body is not valid JSON.")
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = "not_authenticated"
        message = exc.detail
    elif isinstance(exc, exceptions.Throttled):
        message = _("Too many requests. Try again in %(seconds)s seconds.") % {
            "seconds": exc.wait and int(exc.wait) or 1
        }
    else:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    response = Response(error_body(code, message, fields), status=exc.status_code, headers=headers)
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in headers:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response

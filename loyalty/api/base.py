"""What every API module shares: the error answers the schema documents, reading a serializer's
validated data, and a query parameter given once. The till's API and the survey API both use it."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse

from loyalty.api import serializers as s
from loyalty.engine.errors import LoyaltyError


def _error(description):
    return OpenApiResponse(s.ErrorEnvelopeSerializer, description=description)


# Every answer that is not a success has the error envelope (loyalty/api/errors.py), whichever
# layer gives it: the serializers, the services, the middleware (413, 414) or DRF itself (415).
ERRORS = {
    400: _error("Invalid input (`invalid`, `malformed_request`); `error.fields` names each field."),
    401: _error("No API key, or a revoked or unknown one (`not_authenticated`)."),
    403: _error("The key may not do this (`permission_denied`)."),
    404: _error("No such member, purchase or coupon for this key (`member_not_found`, ...)."),
    405: _error("The path does not take this method (`method_not_allowed`)."),
    409: _error("Conflicts: `member_exists`, `idempotency_conflict`."),
    413: _error("The request body is larger than 2 MiB (`request_too_large`)."),
    414: _error("The URL is too long."),
    415: _error("The body is not `application/json` (`unsupported_media_type`)."),
    422: _error(
        "A business rule refuses a valid request: `insufficient_points`, "
        "`redeem_limit_exceeded`, `coupon_not_applicable`, `member_blocked`, "
        "`refund_exceeds_purchase`, ..."
    ),
    429: _error("Too many requests for this key (`throttled`); see Retry-After."),
    503: _error("Busy or a service is down (`busy`, `unavailable`); retry after Retry-After."),
}


def validated(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def one_query_value(request, name):
    """A query parameter given at most once; ``?phone=a&phone=b`` is refused, not half read.

    (A NUL in it never gets here: HostileUrlMiddleware refuses it first, naming the parameter.)
    """
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise LoyaltyError(
            "invalid",
            _("The request has invalid fields."),
            fields={name: [str(_("Give this parameter once."))]},
            status_code=400,
        )
    return values[0] if values else None

"""OpenAPI: the API key authentication, strict request bodies and the error answers' headers
(drf-spectacular extensions and a postprocessing hook)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loyalty.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A store's API key: `Authorization: Bearer lk_…` "
            "(python manage.py create_api_key STORE_CODE).",
        }


# Text fields refuse NUL characters (PostgreSQL cannot store them), and a required one refuses a
# value that is empty once trimmed of whitespace (DRF trims what str.strip() trims: these classes).
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
ANY_TEXT = r"^[^\x00]*$"
NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


class StrictSerializerScheme(OpenApiSerializerExtension):
    """A request body refuses fields it does not know: say so (additionalProperties: false)."""

    target_class = "loyalty.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for name, field in self.target.fields.items():
            prop = schema.get("properties", {}).get(name)
            plain_text = prop and not {"pattern", "format", "enum", "$ref"} & set(prop)
            if isinstance(field, serializers.CharField) and plain_text:
                prop["pattern"] = ANY_TEXT if field.allow_blank else NOT_BLANK
        if not type(self.target).__dict__.get("__doc__"):
            schema.pop("description", None)  # StrictSerializer's own docstring, inherited
        return schema


_RESPONSE_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "description": 'The scheme to authenticate with: `Bearer realm="api"`.',
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds until the key's throttle window opens again.",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
    "503": {
        "Retry-After": {
            "description": "Seconds after which a retry is worth making.",
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}


def document_error_headers(result, generator, request, public):
    """POSTPROCESSING_HOOKS: the headers that come with 401, 429 and 503 on every operation."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for code, headers in _RESPONSE_HEADERS.items():
                response = operation.get("responses", {}).get(code)
                if response is not None:
                    response.setdefault("headers", {}).update(headers)
    return result

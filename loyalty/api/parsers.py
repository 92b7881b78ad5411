"""The API's JSON parser: DRF's, with a body nested too deep for Python a parse error too."""

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Python's json gives up around a thousand levels of nesting; no valid request has
            # more than three, so this is malformed input (400), not a server error.
            raise ParseError(_("JSON parse error - nested too deep")) from None

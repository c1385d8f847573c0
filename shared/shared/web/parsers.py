"""The one JSON parser of every service (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES).

DRF's JSONParser hands the body to `json.load`, which recurses once per nested array or object: about a
thousand levels (2 KB of `[`) exhaust the interpreter's stack and every JSON endpoint answered 500. This
parser measures the nesting first, with a linear scan that does not recurse, and refuses a body nested
deeper than `settings.JSON_MAX_DEPTH` with a 400 in the contract's shape, before anything recursive
(the decoder, serializers, error rendering, idempotency fingerprints) sees it.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from shared.web.json_limits import json_depth


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than `settings.JSON_MAX_DEPTH`.

    A subclass on purpose: DRF reads a JSONParser's body through `request.body`, which enforces
    DATA_UPLOAD_MAX_MEMORY_SIZE (a larger body is a 413, shared.web.errors).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        limit = settings.JSON_MAX_DEPTH
        if json_depth(text) > limit:
            raise ParseError(f"The body nests arrays and objects deeper than {limit} levels.")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc

"""How each operation is described in the OpenAPI document: its error responses, its tag, whether it needs
credentials, and the input constraints the server applies that drf-spectacular would leave out.

Its own module, apart from the schema view (shared.web.openapi): DRF imports DEFAULT_SCHEMA_CLASS while
drf-spectacular's views are being imported, so this module must not import them.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# At least one character that str.strip() keeps (DRF trims with it). Spelled out: a JSON Schema regex is
# ECMA-262's, whose \s lacks the separators U+001C-U+001F and U+0085 that Python strips.
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"
SLUG = r"^[-a-zA-Z0-9_]+$"  # DRF's SlugField (ASCII)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Why each error status may answer; an operation documents those that apply to it (error_statuses).
ERROR_DESCRIPTIONS = {
    400: "Invalid input: `error.fields` names each invalid field and why.",
    401: "No credentials, or a bearer token that is invalid, expired or revoked.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource (or not visible to the caller).",
    409: "Conflicts with the resource's current state, or a request with the same key is in flight.",
    413: "The request body is larger than the service accepts.",
    414: "The request line is longer than the gateway reads (6k, URL-encoded).",
    415: "The body is not JSON (send `Content-Type: application/json`).",
    422: "Understood but refused by a business rule (e.g. an Idempotency-Key reused with another body).",
    429: "Too many requests: slow down (the gateway's rate limit or the service's throttle).",
    503: "A dependency (the database, a downstream service) is unavailable: retry after `Retry-After`.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable (e.g. `validation_error`, `not_found`).")
    message = serializers.CharField(help_text="For people.")
    fields = serializers.DictField(
        help_text="Per invalid field, a list of messages (nested fields nest the same way).",
        child=serializers.JSONField(),
    )


class ErrorSerializer(serializers.Serializer):
    """The contract's one error shape (shared.web.errors)."""

    error = ErrorDetailSerializer()


def error_response(status_code: int, description: str | None = None) -> OpenApiResponse:
    """An error response for `@extend_schema(responses=...)`, in the contract's shape."""
    return OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS[status_code])


class PlatformAutoSchema(AutoSchema):
    """drf-spectacular's schema, with every operation's error responses and a tag per resource.

    Errors a view declares itself (`@extend_schema(responses={409: error_response(409)})`) are kept;
    the common ones are added from what the view is: any operation may be rate limited (429) or meet an
    unavailable database (503); one with a body or query parameters may be invalid (400); one behind
    authentication may meet a bad token (401) and, unless public, a refusal (403); one naming a resource
    in its path, or a page of a list, may find nothing (404); a body may be too large or not JSON.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            for status_code in sorted(self.error_statuses()):
                responses.setdefault(
                    str(status_code),
                    self._get_response_for_code(error_response(status_code), str(status_code)),
                )
        return dict(sorted(responses.items()))

    def error_statuses(self) -> set[int]:
        statuses = {429, 503}
        if self.method in BODY_METHODS and self._get_request_body() is not None:
            statuses |= {400, 413, 415}
        if self._query_parameters():
            statuses |= {400, 414}
        if self.view.get_authenticators():
            statuses.add(401)
        if not self.allows_anonymous():
            statuses |= {401, 403}
        if "{" in self.path or self._is_paginated_list():
            statuses.add(404)
        return statuses

    def allows_anonymous(self) -> bool:
        """Whether the view's permissions let a caller without credentials do this operation (asked of
        the permissions themselves, with a request that has no user)."""
        anonymous = SimpleNamespace(method=self.method, user=None, auth=None)
        try:
            return all(
                permission.has_permission(anonymous, self.view) for permission in self.view.get_permissions()
            )
        except Exception:  # a permission that needs more of a request than this: it wants a caller
            return False

    def get_auth(self):
        """Credentials are optional (`{}` among the requirements) where the permissions allow anyone."""
        requirements = super().get_auth()
        if requirements and {} not in requirements and self.allows_anonymous():
            requirements.append({})
        return requirements

    def _map_basic_serializer(self, serializer, direction):
        """A body that must name at least one of its fields (`requires_any_field = True` on the serializer,
        e.g. a PATCH) says so: `anyOf` one field required."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(serializer, "requires_any_field", False):
            writable = [name for name, field in serializer.fields.items() if not field.read_only]
            schema["anyOf"] = [{"required": [name]} for name in writable]
        return schema

    def _get_request_body(self, direction="request"):
        """A body that must name a field cannot be left out either."""
        body = super()._get_request_body(direction)
        if body is not None and getattr(self.get_request_serializer(), "requires_any_field", False):
            body["required"] = True
        return body

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """Input constraints the document would otherwise miss, so that what it calls valid is accepted."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and isinstance(field, serializers.ListSerializer):
            return _list_input(field, schema)
        if direction == "request" and schema.get("type") == "string":
            if isinstance(field, serializers.SlugField) and not field.allow_unicode:
                schema["pattern"] = SLUG
            if (
                _strips_to_non_blank(field)
                and "pattern" not in schema
                and "format" not in schema
                and "enum" not in schema
            ):
                schema["pattern"] = NOT_BLANK  # DRF trims whitespace first: "  " is blank
            if isinstance(field, serializers.DecimalField):
                return _decimal_input(field, schema)
        return schema

    def get_tags(self) -> list[str]:
        """The resource (`/api/v1/orders/...` -> `orders`); internal routes together under `internal`."""
        segments = [segment for segment in self.path.split("/") if segment]
        if segments[:1] == ["api"] and len(segments) > 2:
            return [segments[2]]
        if segments[:1] == ["internal"]:
            return ["internal"]
        if segments[:1] == [".well-known"]:
            return ["keys"]
        return super().get_tags()

    def _query_parameters(self) -> list:
        return [p for p in self._get_parameters() if p.get("in") == "query"]

    def _is_paginated_list(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None


def _strips_to_non_blank(field) -> bool:
    return (
        isinstance(field, serializers.CharField)
        and not field.allow_blank
        and field.trim_whitespace
        and not isinstance(field, serializers.ChoiceField)
    )


def _decimal_input(field: serializers.DecimalField, schema: dict) -> dict:
    """A decimal input as DRF reads it: a string of digits (at least one, the sign only if negatives are
    allowed), or a JSON number, each within the field's digits and bounds."""
    places = field.decimal_places
    whole = field.max_digits - places
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    text = {**schema, "pattern": rf"^{sign}(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"}
    text.pop("format", None)
    number = {"type": "number", "multipleOf": float(Decimal(1).scaleb(-places))}
    number["maximum"] = (
        float(field.max_value)
        if field.max_value is not None
        else float(Decimal(10) ** whole - Decimal(1).scaleb(-places))
    )
    if field.min_value is not None:
        number["minimum"] = float(field.min_value)
    elif sign:
        number["minimum"] = -number["maximum"]
    return {"oneOf": [text, number]}


def _list_input(field: serializers.ListSerializer, schema: dict) -> dict:
    """A list of objects' bounds (`many=True, allow_empty=False, max_length=...`), which DRF enforces."""
    if schema.get("type") != "array":
        return schema
    minimum = max(field.min_length or 0, 0 if field.allow_empty else 1)
    if minimum:
        schema["minItems"] = minimum
    if field.max_length is not None:
        schema["maxItems"] = field.max_length
    return schema

"""What every API input goes through: JSON types are checked, not coerced, and query strings are strict.

DRF converts what it can: `"5"` and `5.0` become the integer 5, `0` becomes the string "0", `"yes"`
becomes true. A client that sends the wrong type would then be served by luck, and the OpenAPI document
(which says `integer`, `string`, `boolean`) would not be the contract the service keeps. Input
serializers derive from `InputSerializer`: a value of the wrong JSON type is a 400 naming the field.

Query strings are read with `query_parameters`: one value per name (the last, as Django does), and an
empty value is invalid rather than silently ignored (DRF's HTML-form reading drops `?order_id=`).
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.request import Request

# The JSON types each kind of field reads, most specific field first. Decimals are written as strings
# ("12.50"); a JSON number is read too (exact to the cent it must be), as v1 always has.
JSON_TYPES: tuple[tuple[type, tuple[type, ...], str], ...] = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (str, int, float), "a decimal number (best written as a string)"),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a UUID string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a date-time string"),
    (serializers.ListField, (list,), "an array"),
    (serializers.ListSerializer, (list,), "an array"),
)


def json_type_error(field: serializers.Field, value) -> str | None:
    """Why `value` is not of the JSON type `field` reads; None when it is (or null, left to allow_null)."""
    if value is None:
        return None
    for field_class, accepted, name in JSON_TYPES:
        if isinstance(field, field_class):
            is_bool_for_number = isinstance(value, bool) and bool not in accepted
            if is_bool_for_number or not isinstance(value, accepted):
                return f"Must be {name}."
            return _too_long(field, value)
    return None


def _too_long(field: serializers.Field, value) -> str | None:
    """DRF measures a string after trimming its white space; the document's `maxLength` (and a client)
    counts what was sent. The sent string is what is held to the limit."""
    limit = getattr(field, "max_length", None)
    if isinstance(field, serializers.CharField) and limit is not None and len(value) > limit:
        return f"Ensure this field has no more than {limit} characters."
    return None


class InputSerializer(serializers.Serializer):
    """A request body's serializer: every field gets a value of its own JSON type, or the request is a 400."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {
                name: [message]
                for name, field in self.fields.items()
                if not field.read_only
                and name in data
                and (message := json_type_error(field, data[name])) is not None
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def query_parameters(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request's query string validated by `serializer_class` (a 400 naming each bad parameter)."""
    query = serializer_class(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    return query.validated_data

"""Domain errors and the one DRF exception handler that renders the contract's error shape.

Every error leaves a service as `{"error": {"code": ..., "message": ..., "fields": {...}}}` with the
right status, whether it came from validation, authentication, a domain rule or an unexpected bug.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A refused business operation with a stable machine-readable `code`."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class Unprocessable(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unprocessable"


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


# DRF's own exceptions mapped to the contract's codes (their default_code is close but not uniform).
_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def field_messages(detail) -> dict | list:
    """Error details in one shape: a field maps to a list of messages, nested fields to nested shapes."""
    if isinstance(detail, dict):
        return {str(key): field_messages(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            return [str(item) for item in detail]
        return [field_messages(item) for item in detail]
    return [str(detail)]


def _validation_response(exc: exceptions.ValidationError, response: Response) -> Response:
    detail = exc.detail
    if isinstance(detail, dict):
        non_field = detail.get("non_field_errors")
        fields = {key: field_messages(value) for key, value in detail.items() if key != "non_field_errors"}
        message = " ".join(field_messages(non_field)) if non_field else "The request has invalid fields."
    else:
        fields, message = {}, " ".join(str(item) for item in field_messages(detail))
    response.data = error_body("validation_error", message, fields)
    return response


def exception_handler(exc, context):
    """DRF `EXCEPTION_HANDLER`: every handled error in the contract's shape."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, field_messages(exc.fields)), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handler (json_server_error) answers and logs it
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(exc, response)
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    code = code or getattr(exc, "default_code", "error")
    detail = exc.detail
    if isinstance(detail, dict):  # simplejwt puts {"detail", "code", "messages"} here
        code = str(detail.get("code") or code)
        detail = detail.get("detail", "The request was refused.")
    elif isinstance(detail, list):
        detail = " ".join(str(item) for item in detail)
    response.data = error_body(code, str(detail))
    return response


def json_not_found(request, exception=None):
    """`handler404` for paths outside DRF views, so even unknown URLs answer in the contract's shape."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_server_error(request):
    """`handler500`: never leak a traceback; the log line (with correlation id) holds the details."""
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)

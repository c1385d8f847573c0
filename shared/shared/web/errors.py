"""Domain errors and the one DRF exception handler that renders the contract's error shape.

Every error leaves a service as `{"error": {"code": ..., "message": ..., "fields": {...}}}` with the
right status, whether it came from validation, authentication, a domain rule or an unexpected bug, and
whether DRF saw it or Django refused the request first (Django's error handlers and its CSRF failure view
are here too). Only the admin's pages, read by people in a browser, keep Django's HTML error pages.
"""

from __future__ import annotations

import functools
import logging
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views import csrf, defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# The database cannot be used right now: refused or dropped connections, a server shutting down or in
# recovery, a query cancelled or a deadlock (psycopg raises all of these as OperationalError).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


class DomainError(Exception):
    """A refused business operation with a stable machine-readable `code`."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


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


# Deeper than any body the parser lets through (shared.web.parsers, JSON_MAX_DEPTH): a bound on the recursion
# below whatever produced the details, so rendering an error can never be what fails.
_MAX_FIELD_DEPTH = 100


def field_messages(detail, _depth: int = 0) -> dict | list:
    """Error details in one shape: a field maps to a list of messages, nested fields to nested shapes."""
    if _depth >= _MAX_FIELD_DEPTH:
        return ["Nested too deeply to report."]
    if isinstance(detail, dict):
        return {str(key): field_messages(value, _depth + 1) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            return [str(item) for item in detail]
        return [field_messages(item, _depth + 1) for item in detail]
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


DATABASE_UNAVAILABLE_MESSAGE = "The service cannot reach its database; try again shortly."
# How long a client should wait before trying again after a 503 (Retry-After): a database restart or
# failover, a broker outage the outbox rides out, typically take seconds.
RETRY_AFTER_SECONDS = 5


def exception_handler(exc, context):
    """DRF `EXCEPTION_HANDLER`: every handled error in the contract's shape."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return _database_unavailable(exc, context)
    if isinstance(exc, DomainError):
        body = error_body(exc.code, exc.message, field_messages(exc.fields))
        response = Response(body, status=exc.status_code)
        if exc.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not DRF's: Django's handlers below answer (and log) it
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


def _database_unavailable(exc, context) -> Response:
    """The database cannot be used (restarting, failing over, connections refused or dropped): a 503 the
    client may retry, not a 500. A transaction the error interrupted was rolled back; a retry of order
    creation with the same Idempotency-Key is answered from whatever did commit."""
    request = context.get("request")
    logger.warning(
        "database unavailable: answered 503",
        extra={"error": str(exc).strip()[:200], "path": getattr(request, "path", None)},
    )
    response = Response(
        error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# --- Django's own refusals, outside DRF (each service's urls: shared.web.urls.handler400 and the others) ---


def _is_admin_page(request) -> bool:
    """People read the admin in a browser: its errors stay Django's HTML pages. Every other path (the
    API, /.well-known/, /health, /metrics, unknown paths) is read by programs and answers JSON."""
    return request.path_info.startswith(f"/{settings.ADMIN_URL_PATH}")


def _json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def bad_request(request, exception=None):
    """`handler400`: what Django refuses before or around a view (a SuspiciousOperation): an unknown
    Host header, a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413: that is what it is), too many fields.
    Never looks at the host itself: that may be what is wrong."""
    if _is_admin_page(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _json_error(413, "payload_too_large", "The request body is too large.")
    if isinstance(exception, DisallowedHost):
        return _json_error(400, "invalid_host", "The Host header names no host this service answers to.")
    return _json_error(400, "malformed_request", "The request was refused as malformed.")


def permission_denied(request, exception=None):
    """`handler403`: a PermissionDenied raised outside DRF."""
    if _is_admin_page(request):
        return defaults.permission_denied(request, exception)
    return _json_error(403, "permission_denied", "You do not have permission to perform this action.")


def not_found(request, exception=None):
    """`handler404`: unknown URLs and Http404 outside DRF views."""
    if _is_admin_page(request):
        return defaults.page_not_found(request, exception)
    return _json_error(404, "not_found", "Not found.")


def server_error(request):
    """`handler500`: never leak a traceback; the log line (with correlation id) holds the details.

    Django calls it while the exception is being handled. A database that cannot be used is a retryable
    503 here too: the admin's pages, plain views and middleware (the session, the signed-in user) reach
    the database outside DRF, and a restart must not show people or programs a 500."""
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return _database_unavailable_outside_drf(request)
    if _is_admin_page(request):
        return defaults.server_error(request)
    return _json_error(500, "server_error", "Internal server error.")


def _database_unavailable_outside_drf(request) -> HttpResponse:
    message = DATABASE_UNAVAILABLE_MESSAGE
    if _is_admin_page(request):
        page = (
            f"<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1><p>{message}</p>"
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    else:
        response = _json_error(503, "database_unavailable", message)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def require_methods(*methods: str):
    """Django's `require_http_methods` for plain Django views, with its 405 in the contract's shape."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = _json_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: the admin's forms get Django's explanation page; anything else (a POST to a
    plain Django view such as /health/live) a 403 in the contract's shape."""
    if _is_admin_page(request):
        return csrf.csrf_failure(request, reason=reason)
    return _json_error(403, "csrf_failed", f"CSRF verification failed: {reason}")

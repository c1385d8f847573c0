"""The `Idempotency-Key` header on the endpoints that place orders (Stripe semantics, per user)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from orders import services
from shared.web.errors import DomainError, exception_handler

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces, at most 100 characters


def request_fingerprint(request: Request) -> str:
    """sha256 of the canonical JSON of the request (its path and body): what "the same request" means."""
    canonical = json.dumps(
        {"path": request.path, "body": request.data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_response(request: Request, *, user_id: uuid.UUID, handler: Callable[[], Response]) -> Response:
    """`handler()`'s response, or, for a key seen before, the first response to it.

    Client errors (4xx) are answers too: they are stored and replayed like successes. Anything else
    that goes wrong stores nothing, so the client may retry with the same key.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if not _VALID_KEY.fullmatch(key):
        raise ValidationError({HEADER: "1 to 100 printable ASCII characters, without spaces."})

    def run() -> services.StoredResponse:
        try:
            response = handler()
        except (DomainError, APIException) as exc:
            response = exception_handler(exc, {})
            if response is None or not 400 <= response.status_code < 500:
                raise
        return services.StoredResponse(status=response.status_code, body=response.data)

    stored, replayed = services.idempotent_call(
        user_id=user_id, key=key, fingerprint=request_fingerprint(request), run=run
    )
    response = Response(stored.body, status=stored.status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response

"""Django middleware common to every service."""

from __future__ import annotations

import re

from shared.observability import context

# Accept a caller's id only if it looks like an id, so log lines cannot be forged or bloated.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class CorrelationIdMiddleware:
    """Takes `X-Request-ID` (or makes one), binds it for the request and echoes it in the response."""

    header = "HTTP_X_REQUEST_ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(self.header, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else context.new_id()
        with context.bound(correlation_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

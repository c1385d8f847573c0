"""Every request's part in read-your-writes (shared.replica): its lag-tolerant reads decided once, its
reader pinned to the primary after a write, and, with REPLICA_READ_HEADER on, the answer saying where
they were read (`X-Read-From: replica` or `X-Read-From: primary; reason=pinned`)."""

from __future__ import annotations

from django.conf import settings

from shared.replica import reads
from shared.replica.pins import record_write

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "X-Read-From"


class ReadYourWritesMiddleware:
    """After authentication (its reader is the request's user, whom DRF sets when the view runs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with reads.request_scope(request) as scope:
            response = self.get_response(request)
        # A non-safe request that succeeded changed something (or harmlessly pins for nothing).
        wrote = request.method not in SAFE_METHODS and response.status_code < 400
        if wrote and settings.REPLICA_ENABLED and (reader := reads.reader_id(request)):
            record_write(f"user:{reader}")
        if scope.routes and settings.REPLICA_READ_HEADER:
            response[HEADER] = ", ".join(sorted({describe(route) for route in scope.routes.values()}))
        return response


def describe(route: reads.Route) -> str:
    if route.reason == reads.Reason.REPLICA:
        return "replica"
    return f"primary; reason={route.reason}"

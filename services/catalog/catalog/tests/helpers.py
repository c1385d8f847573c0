"""Helpers for catalog's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from rest_framework.test import APIClient

from shared.messaging.models import OutboxEvent


def bearer_client(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def assert_error(response, status: int, code: str) -> dict:
    """The contract's error shape, with the expected status and code. Returns the `error` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


def outbox(event_type: str | None = None) -> list[dict]:
    """The envelopes written to the outbox, oldest first (optionally of one type)."""
    events = OutboxEvent.objects.order_by("created_at")
    if event_type:
        events = events.filter(event_type=event_type)
    return [event.envelope for event in events]


class UnreachableCache:
    """Stands in for Redis during an outage: every operation fails like a refused connection."""

    def __getattr__(self, name):
        def unreachable(*args, **kwargs):
            raise ConnectionError("redis is down")

        return unreachable

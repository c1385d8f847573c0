"""Helpers for identity's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from rest_framework.test import APIClient

PASSWORD = "violet-harbour-lantern-42"
TOKEN_URL = "/api/v1/auth/token/"


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

"""Helpers for identity's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from shared.testing import assert_error, bearer_client  # noqa: F401 (the tests import them from here)

PASSWORD = "violet-harbour-lantern-42"
TOKEN_URL = "/api/v1/auth/token/"

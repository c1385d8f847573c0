"""Helpers for catalog's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from shared.testing import assert_error, bearer_client, outbox_envelopes  # noqa: F401 (the tests import them from here)


def outbox(event_type: str | None = None) -> list[dict]:
    """The envelopes written to the outbox, oldest first (optionally of one type)."""
    return outbox_envelopes(event_type)


class UnreachableCache:
    """Stands in for Redis during an outage: every operation fails like a refused connection."""

    def __getattr__(self, name):
        def unreachable(*args, **kwargs):
            raise ConnectionError("redis is down")

        return unreachable

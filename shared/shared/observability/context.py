"""Per-request / per-message context: the correlation id and the event being handled.

A correlation id names one business flow (an order's whole journey). It enters at the edge as
`X-Request-ID`, is stored here for the duration of a request or a consumed event, and leaves with every
outgoing HTTP call and every event envelope, so logs of all services can be joined on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
# What the current work is about (order_id, event_id, event_type): stamped on every log line meanwhile.
_log_fields: ContextVar[dict[str, str]] = ContextVar("log_fields", default={})  # noqa: B039 (never mutated)


def new_id() -> str:
    return str(uuid.uuid4())


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def get_causation_id() -> str | None:
    """Id of the event being handled right now, the cause of any event published meanwhile."""
    return _causation_id.get()


@contextmanager
def bound(*, correlation_id: str | None, causation_id: str | None = None) -> Iterator[None]:
    """Bind the ids for the duration of a block, restoring the previous ones afterwards."""
    corr_token = _correlation_id.set(correlation_id or new_id())
    cause_token = _causation_id.set(causation_id)
    try:
        yield
    finally:
        _causation_id.reset(cause_token)
        _correlation_id.reset(corr_token)


def bind_until_reset(correlation_id: str) -> object:
    """Bind a correlation id where a `with` block cannot be used (Celery's pre/post-run signals)."""
    return _correlation_id.set(correlation_id)


def reset(binding) -> None:
    _correlation_id.reset(binding)


def log_fields() -> dict[str, str]:
    """The ids bound by `about`, for the log filter."""
    return _log_fields.get()


@contextmanager
def about(**fields: object) -> Iterator[None]:
    """Name what a block works on (`order_id=...`, `event_id=...`): every log line inside carries it.

    Nested blocks add to (and may override) the outer fields; empty values are ignored.
    """
    added = {name: str(value) for name, value in fields.items() if value not in (None, "")}
    token = _log_fields.set({**_log_fields.get(), **added})
    try:
        yield
    finally:
        _log_fields.reset(token)

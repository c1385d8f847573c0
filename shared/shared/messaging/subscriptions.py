"""What a service consumes: read once from settings.EVENT_SUBSCRIPTIONS.

    EVENT_SUBSCRIPTIONS = {
        "payment.succeeded": "orders.handlers.on_payment_succeeded",
        "payment.failed": ["orders.handlers.on_payment_failed", "orders.handlers.count_failure"],
    }

The keys become the bindings of `<service>.events`; the values are the handlers, each one an
inbox consumer of its own (named by its dotted path, so keep handler paths stable).

A handler reads version 1 of its event unless it says otherwise with `@accepts_versions(1, 2)`: an
event in a version one of its handlers does not read is dead-lettered before any handler runs (design
section 6), so a new version rolls out by teaching consumers first, producers second.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_VERSIONS = frozenset({1})


def accepts_versions(*versions: int):
    """Declare the versions of its event type a handler reads (decorator)."""

    def declare(handler: Callable) -> Callable:
        handler.event_versions = frozenset(versions)
        return handler

    return declare


def accepted_versions(handler: Callable) -> frozenset[int]:
    return getattr(handler, "event_versions", DEFAULT_VERSIONS)


def normalized(subscriptions: dict[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    return {
        event_type: (paths,) if isinstance(paths, str) else tuple(paths)
        for event_type, paths in subscriptions.items()
    }


def subscribed_types() -> list[str]:
    return sorted(settings.EVENT_SUBSCRIPTIONS)


@cache
def handlers_for(event_type: str) -> tuple[tuple[str, Callable], ...]:
    """`(consumer name, handler)` pairs for an event type; empty if the service does not consume it."""
    paths = normalized(settings.EVENT_SUBSCRIPTIONS).get(event_type, ())
    return tuple((path, import_string(path)) for path in paths)


def check_handlers_importable() -> list[str]:
    """Dotted paths that do not import (reported by `manage.py check` and at worker start)."""
    broken = []
    for paths in normalized(settings.EVENT_SUBSCRIPTIONS).values():
        for path in paths:
            try:
                import_string(path)
            except ImportError:
                broken.append(path)
    return broken

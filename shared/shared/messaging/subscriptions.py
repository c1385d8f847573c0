"""What a service consumes: read once from settings.EVENT_SUBSCRIPTIONS.

    EVENT_SUBSCRIPTIONS = {
        "payment.succeeded": "orders.handlers.on_payment_succeeded",
        "payment.failed": ["orders.handlers.on_payment_failed", "orders.handlers.count_failure"],
    }

The keys become the bindings of `<service>.events`; the values are the handlers, each one an
inbox consumer of its own (named by its dotted path, so keep handler paths stable).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


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

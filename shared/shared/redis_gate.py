"""Redis when it hangs or is down: each use has a fallback, and none waits on it more than once in a while.

Redis holds only what the platform can do without for a while (docs/architecture.md, "Redis"): the
circuit breakers' shared state, the catalog's read cache, carts, the revocation list. A hung Redis (it
accepts connections and never answers) would otherwise cost every request one socket timeout per Redis
call, several per request. So every call goes through a gate: after one failure (a timeout, a refused or
dropped connection) the process stops asking Redis for REDIS_BACKOFF_SECONDS, and each call fails at
once with `RedisSkipped` (a RedisError), which each use already handles with its fallback. The next call
after the backoff tries Redis again. One gate per process and Redis: what one use learns, every use knows.

The revocation list keeps its own client and breaker (shared.auth.revocation: its fail-open or
fail-closed policy is a security decision of its own).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client import Counter
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

REDIS_CALLS_SKIPPED = Counter(
    "redis_calls_skipped",
    "Redis calls not made because Redis failed moments before (shared.redis_gate): each use's fallback ran.",
)


class RedisSkipped(RedisError):
    """Redis was not asked: it failed less than the backoff ago."""


class RedisGate:
    """Whether Redis may be asked now, in this process."""

    def __init__(self, backoff_seconds: float | None = None) -> None:
        self._backoff_seconds = backoff_seconds
        self._closed_until = 0.0
        self._lock = threading.Lock()

    @property
    def backoff_seconds(self) -> float:
        if self._backoff_seconds is not None:
            return self._backoff_seconds
        from django.conf import settings

        return settings.REDIS_BACKOFF_SECONDS

    def available(self) -> bool:
        return time.monotonic() >= self._closed_until

    def failed(self, operation: str, error: Exception) -> None:
        """Redis failed: stop asking it for the backoff (logged once per outage, not once per call)."""
        with self._lock:
            was_open = self.available()
            self._closed_until = time.monotonic() + self.backoff_seconds
        if was_open:
            logger.warning(
                "Redis unavailable: every use falls back for a few seconds",
                extra={"operation": operation, "error": str(error), "backoff_seconds": self.backoff_seconds},
            )

    def reset(self) -> None:
        """Ask Redis again at once (tests that heal Redis)."""
        self._closed_until = 0.0


class GatedRedis:
    """A redis-py client whose calls go through a gate: RedisSkipped while the gate is closed, and any
    RedisError closes it. Attributes that are not calls (the connection pool...) pass through; what a
    call returns (a pipeline, a script) is not gated itself: use `guarded` around such blocks."""

    def __init__(self, client, gate: RedisGate) -> None:
        self._client = client
        self._gate = gate

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            with guarded(name, self._gate):
                return attribute(*args, **kwargs)

        return call


GATE = RedisGate()  # the process's gate for the service's Redis (REDIS_URL)


@contextlib.contextmanager
def guarded(operation: str, gate: RedisGate = GATE) -> Iterator[None]:
    """The gate around a block of Redis calls (pipelines, scripts): RedisSkipped at once while it is
    closed; a RedisError inside closes it."""
    if not gate.available():
        REDIS_CALLS_SKIPPED.inc()
        raise RedisSkipped(f"Redis not asked ({operation}): it failed less than a backoff ago")
    try:
        yield
    except RedisSkipped:
        raise
    except RedisError as exc:
        gate.failed(operation, exc)
        raise


def redis_connection() -> GatedRedis:
    """The service's Redis (django_redis' default connection, with its short timeouts), gated."""
    from django_redis import get_redis_connection

    return GatedRedis(get_redis_connection("default"), GATE)

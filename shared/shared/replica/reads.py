"""Where a lag-tolerant read goes: `lag_tolerant(queryset)` in a selector, decided once per request.

`decide` is the rule (shared.replica says it in words); `request_scope` (entered by
shared.replica.middleware) holds each request's decision so that all its lag-tolerant reads see one
database; outside a request (Celery tasks, event handlers, commands) every read uses the primary.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from redis.exceptions import RedisError

from shared.admin_ui.actors import identity_user_id
from shared.replica.health import PRIMARY, REPLICA, Health, HealthMonitor, drop_replica_connection
from shared.replica.lsn import lsn_value
from shared.replica.metrics import LAG_TOLERANT_READS
from shared.replica.pins import STORE, PinStore


class Reason(enum.StrEnum):
    """Why a request's lag-tolerant reads went where they went (the counter's `reason` label)."""

    REPLICA = "replica"  # the replica may serve them
    UNAVAILABLE = "unavailable"  # down, refused, failing: fallback
    LAGGING = "lagging"  # more than REPLICA_MAX_LAG_SECONDS behind (or unknown): fallback
    PINNED = "pinned"  # the reader's own write is not replayed yet: read-your-writes
    PIN_UNKNOWN = "pin_unknown"  # Redis cannot say whether the reader wrote: in doubt, the primary


@dataclass(frozen=True)
class Route:
    database: str
    reason: Reason


UNKNOWN = object()  # a pin that could not be read
QuerySetT = TypeVar("QuerySetT", bound=QuerySet)


def decide(
    *,
    health: Health,
    max_lag_seconds: float,
    pin: Callable[[], int | object | None],
    probe: Callable[[], int | None],
) -> Route:
    """The rule. `pin()`: the highest WAL position the reader must see (None: none; UNKNOWN: Redis could
    not say). `probe()`: the replica's replay position read now on this request's connection (None when
    the alias reaches a primary); raising DatabaseError means it cannot serve this request. Each is
    asked only when the answer depends on it."""
    if not health.available:
        return Route(PRIMARY, Reason.UNAVAILABLE)
    if health.lag_seconds is None or health.lag_seconds > max_lag_seconds:
        return Route(PRIMARY, Reason.LAGGING)
    required = pin()
    if required is UNKNOWN:
        return Route(PRIMARY, Reason.PIN_UNKNOWN)
    try:
        replayed = probe()
    except DatabaseError:
        return Route(PRIMARY, Reason.UNAVAILABLE)
    if required is not None and replayed is not None and replayed < required:
        return Route(PRIMARY, Reason.PINNED)
    return Route(REPLICA, Reason.REPLICA)


MONITOR = HealthMonitor(interval=lambda: settings.REPLICA_CHECK_SECONDS)


def probe_replica() -> int | None:
    """One round trip on this thread's replica connection: is it usable, and how far has it replayed?
    A connection that fails is dropped (and the process stops using the replica until its next sample)."""
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            replayed = cursor.fetchone()[0]
    except DatabaseError as exc:
        drop_replica_connection()
        MONITOR.failed(str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        raise
    return lsn_value(replayed) if replayed else None


def reader_id(request) -> str | None:
    """Who reads, as identity's user id (API token or admin sign-on); None for anonymous callers."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if not hasattr(user, "get_username"):  # an API caller: the access token's claims (shared.auth.api)
        return str(user.id)
    identity = identity_user_id(user)  # an admin: identity's user, a sign-on shadow, or a local account
    return str(identity) if identity else f"local-{user.pk}"


def reader_scopes(request, after: Iterable[str]) -> list[str]:
    reader = reader_id(request)
    return [*after, *([f"user:{reader}"] if reader else [])]


def pin_of(scopes: list[str], store: PinStore | None = None) -> int | object | None:
    if not scopes:
        return None
    store = store or STORE
    if store.in_doubt():
        return UNKNOWN
    try:
        return store.highest(scopes)
    except RedisError:
        return UNKNOWN


@dataclass
class RequestScope:
    request: object
    routes: dict[tuple[str, ...], Route] = field(default_factory=dict)


_scope: ContextVar[RequestScope | None] = ContextVar("replica_request_scope", default=None)


@contextlib.contextmanager
def request_scope(request) -> Iterator[RequestScope]:
    scope = RequestScope(request)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def route_request(request, after: tuple[str, ...]) -> Route:
    return decide(
        health=MONITOR.current(),
        max_lag_seconds=settings.REPLICA_MAX_LAG_SECONDS,
        pin=lambda: pin_of(reader_scopes(request, after)),
        probe=probe_replica,
    )


def read_database(*, after: Iterable[str] = ()) -> str:
    """The alias for this request's lag-tolerant reads. `after`: scopes whose writes the reads must see
    (besides the reader's own), e.g. catalog's product writes for pages cached for everyone."""
    scope = _scope.get()
    if scope is None or not settings.REPLICA_ENABLED or connections[PRIMARY].in_atomic_block:
        return PRIMARY
    key = tuple(sorted(after))
    if key not in scope.routes:
        route = scope.routes[key] = route_request(scope.request, key)
        served_by = "replica" if route.database == REPLICA else "primary"
        LAG_TOLERANT_READS.labels(database=served_by, reason=route.reason).inc()
    return scope.routes[key].database


def lag_tolerant(queryset: QuerySetT, *, after: Iterable[str] = ()) -> QuerySetT:
    """`queryset` on the database this request's lag-tolerant reads use (the replica when it may)."""
    return queryset.using(read_database(after=after))

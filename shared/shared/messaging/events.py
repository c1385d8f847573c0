"""The event envelope and `publish_event`, the one way a service announces a fact.

Envelope (design section 3): `{id, type, version, occurred_at, source, correlation_id, causation_id,
data}`, plus `traceparent` (W3C trace context of the publishing span) when the publisher traces
(shared.observability.tracing): the outbox relay may publish much later and from another process, so
the trace travels inside the event, not only in message headers. Types are past-tense facts
(`order.created`); versions are additive, and a breaking change is a new version that consumers accept
side by side with the old one. Each type and version is declared, with the JSON Schema of its data, in
`shared.contracts` (docs/contracts.md): what is published and what is consumed is checked against it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction

from shared.observability import context, tracing

logger = logging.getLogger(__name__)

ENVELOPE_FIELDS = (
    "id", "type", "version", "occurred_at", "source", "correlation_id", "causation_id", "data", "traceparent",
)  # fmt: skip


class MalformedEvent(ValueError):
    """A message that is not an event envelope: it can never be handled, so it is dead-lettered."""

    # The `reason` label of celery_messages_rejected_total it is counted under.
    reason = "malformed_event"


class UnsupportedEventVersion(MalformedEvent):
    """An event in a version no local handler of its type accepts: dead-lettered, never half-applied,
    until a release that reads it replays it."""

    reason = "unsupported_event_version"


class InvalidEventData(MalformedEvent):
    """An event whose data breaks the schema of its type and version (shared.contracts): no handler can
    apply it, so it is dead-lettered before any runs; replayed once its publisher is fixed."""

    reason = "invalid_event"


class OutsideDedupWindow(MalformedEvent):
    """An event older than the inbox's oldest partition (past retention) or newer than its newest: the
    inbox cannot tell whether it was applied before, so it is dead-lettered for an operator instead of
    risking a second application (shared.messaging.partitions)."""

    reason = "outside_dedup_window"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    version: int
    occurred_at: str
    source: str
    correlation_id: str | None
    causation_id: str | None
    data: dict = field(default_factory=dict)
    traceparent: str | None = None

    @classmethod
    def from_envelope(cls, envelope: object) -> Event:
        if not isinstance(envelope, dict):
            raise MalformedEvent(f"an event envelope is an object, not {type(envelope).__name__}")
        missing = [name for name in ("id", "type", "version", "occurred_at", "data") if name not in envelope]
        if missing:
            raise MalformedEvent(f"event envelope lacks {', '.join(missing)}")
        if not isinstance(envelope["data"], dict):
            raise MalformedEvent("event data must be an object")
        version = envelope["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MalformedEvent("event version must be a positive integer")
        try:
            uuid.UUID(str(envelope["id"]))
        except ValueError as exc:
            raise MalformedEvent("event id must be a UUID") from exc
        event = cls(**{name: envelope.get(name) for name in ENVELOPE_FIELDS})
        try:
            event.occurred  # noqa: B018 (parsed here so that a bad one is refused before any handler)
        except (TypeError, ValueError) as exc:
            raise MalformedEvent("event occurred_at must be an ISO 8601 time with its offset") from exc
        return event

    @property
    def occurred(self) -> datetime:
        """`occurred_at` as a time: the inbox's partition key. A time without an offset is refused: read
        as UTC by one consumer and local time by another, it would be two different keys."""
        moment = datetime.fromisoformat(self.occurred_at)
        if moment.tzinfo is None:
            raise ValueError("occurred_at has no UTC offset")
        return moment

    @property
    def order_id(self) -> uuid.UUID | None:
        """The order the event is about (`data.order_id`); None for events about no order (or a bad id)."""
        value = self.data.get("order_id")
        if not value:
            return None
        try:
            return uuid.UUID(str(value))
        except ValueError:
            return None

    def as_envelope(self) -> dict:
        envelope = asdict(self)
        if envelope["traceparent"] is None:
            del envelope["traceparent"]  # optional: absent when the publisher does not trace
        return envelope


def new_event(event_type: str, data: dict, *, version: int = 1) -> Event:
    """An envelope stamped with this service, the current correlation id and the event being handled."""
    event_id = str(uuid.uuid4())
    return Event(
        id=event_id,
        type=event_type,
        version=version,
        occurred_at=datetime.now(UTC).isoformat(),
        source=settings.SERVICE_NAME,
        correlation_id=context.get_correlation_id() or event_id,
        causation_id=context.get_causation_id(),
        data=data,
        traceparent=tracing.current_traceparent(),
    )


def publish_event(event_type: str, data: dict, *, version: int | None = None) -> Event:
    """Record an event in the outbox, inside the caller's transaction.

    It must run in `transaction.atomic()`: the event row commits or rolls back with the state change
    it announces. Right after commit the relay publishes it (fast path); the periodic sweep catches
    whatever the fast path could not (broker down, process killed).

    `version` defaults to the one this service publishes (`shared.contracts.published_version`). The
    envelope is checked against its contract first: an event no contract declares, or whose data
    breaks its schema, raises `shared.contracts.EventContractError` and nothing is recorded, so every
    publisher's tests check what it publishes.
    """
    from shared import contracts
    from shared.messaging import relay
    from shared.messaging.models import OutboxEvent, stored_correlation_id

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("publish_event() must be called inside transaction.atomic() with the state change")
    version = version or contracts.published_version(event_type)
    event = new_event(event_type, data, version=version)
    contracts.check_envelope(event.as_envelope())
    OutboxEvent.objects.create(
        id=event.id,
        event_type=event.type,
        version=event.version,
        envelope=event.as_envelope(),
        # Copied out of the envelope so that one order's events are found by index (shared.saga).
        order_id=event.order_id,
        correlation_id=stored_correlation_id(event.correlation_id),
    )
    transaction.on_commit(partial(relay.publish_after_commit, event.id))
    return event


_QUICK_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def run_task_after_commit(task_name: str, *args, **kwargs) -> None:
    """Queue a local Celery task, named by its contract name, once the current transaction commits.

    For work a service does after a state change (a charge, an e-mail). By name, so that a service
    module never imports its tasks module (which imports the service). It never raises into the
    caller: if the broker is unreachable the task is not queued, so every such piece of work must
    also be recorded as a row that a periodic sweep picks up (design rule 4).
    """

    def send() -> None:
        try:
            # A pooled connection may have been closed by a broker restart: reconnect and retry briefly,
            # but never hold the caller for long (the sweep is the safety net).
            current_app.send_task(task_name, args=args, kwargs=kwargs, retry=True, retry_policy=_QUICK_RETRY)
        except Exception:
            logger.warning(
                "task not queued; its sweep will do the work", extra={"task": task_name}, exc_info=True
            )

    transaction.on_commit(send)

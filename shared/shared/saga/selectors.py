"""One service's part of an order's saga: its outbox and inbox rows, its dead letters and its records."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TypedDict

from django.conf import settings
from django.utils.module_loading import import_string

from shared.messaging import deadletters, subscriptions
from shared.messaging.models import InboxMessage, OutboxEvent

logger = logging.getLogger(__name__)

# How many dead letters one request looks at. A peek holds every message it looked at until it is
# done, and dead-letter queues are short unless something is badly wrong; past this, the answer says
# the search was incomplete.
DEAD_LETTER_SCAN = 500


class SagaRecord(TypedDict):
    """One of a service's own records about the order, as its `saga_records` selector returns it."""

    kind: str  # what it is: "reservation", "payment", "refund", "notification", "status", ...
    at: object  # datetime: when it happened (or last changed, said in `summary`)
    summary: str  # one line for people
    status: str
    object_id: str | None  # its primary key in `admin_model`, for a link into the service's admin
    admin_model: str  # "<app_label>.<model_name>" in the service's admin, or ""
    details: dict  # a few more fields worth seeing (JSON values only; never secrets)


def outbox_rows(*, order_id: uuid.UUID) -> list[dict]:
    """The events this service published about the order, oldest first (index outbox_order_idx)."""
    rows = OutboxEvent.objects.filter(order_id=order_id).order_by("created_at", "id")
    return [
        {
            "id": row.id,
            "event_type": row.event_type,
            "correlation_id": row.correlation_id,
            # Only this field of the envelope leaves: some envelopes carry card tokens.
            "causation_id": row.envelope.get("causation_id") if isinstance(row.envelope, dict) else None,
            "created_at": row.created_at,
            "published_at": row.published_at,
            "attempts": row.attempts,
            "last_error": row.last_error,
        }
        for row in rows.only(
            "id",
            "event_type",
            "correlation_id",
            "envelope",
            "created_at",
            "published_at",
            "attempts",
            "last_error",
        )
    ]


def inbox_rows(*, order_id: uuid.UUID) -> list[dict]:
    """The events this service's handlers consumed about the order, oldest first (index inbox_order_idx)."""
    rows = InboxMessage.objects.filter(order_id=order_id).order_by("received_at", "id")
    return list(
        rows.values("id", "consumer", "event_id", "event_type", "correlation_id", "received_at", "deliveries")
    )


def _about_order(dead: deadletters.DeadLetter, order_id: uuid.UUID) -> bool:
    data = dead.envelope.get("data") if dead.envelope else None
    return isinstance(data, dict) and str(data.get("order_id", "")).lower() == str(order_id)


def dead_letters(*, order_id: uuid.UUID, scan: int = DEAD_LETTER_SCAN) -> dict:
    """The parked events about the order in this service's dead-letter queue, left where they are.

    `peek` takes messages without acknowledging them and closes its channel, which returns every one
    to its place (shared.messaging.deadletters). A broker that cannot be read is reported, not raised:
    the rest of the answer is still worth having.
    """
    try:
        peeked = deadletters.peek(scan)
    except Exception as exc:  # the broker is down or refused: say so in the answer
        logger.warning(
            "dead letters not readable for the saga", extra={"order_id": str(order_id)}, exc_info=True
        )
        return {"messages": [], "scanned": 0, "complete": False, "error": f"{type(exc).__name__}: {exc}"}
    messages = [
        {
            "id": dead.id,
            "event_type": dead.event_type,
            "correlation_id": dead.envelope.get("correlation_id"),
            "reason": dead.reason,
            "queue": dead.queue,
            "death_count": dead.death_count,
            "first_death_at": dead.first_death_at,
            "replayed": dead.replayed,
        }
        for dead in peeked
        if _about_order(dead, order_id)
    ]
    return {"messages": messages, "scanned": len(peeked), "complete": len(peeked) < scan, "error": None}


def _records_selector() -> Callable[..., list[SagaRecord]] | None:
    path = getattr(settings, "SAGA_RECORDS", None)
    return import_string(path) if path else None


def service_records(*, order_id: uuid.UUID) -> list[SagaRecord]:
    """The service's own records of the order (its `SAGA_RECORDS` selector), oldest first."""
    selector = _records_selector()
    records = selector(order_id=order_id) if selector else []
    return sorted(records, key=lambda record: record["at"])


def saga_part(*, order_id: uuid.UUID) -> dict:
    """Everything this service knows of the order's saga (the answer of GET /internal/v1/saga/<id>/)."""
    return {
        "service": settings.SERVICE_NAME,
        "order_id": order_id,
        "consumes": subscriptions.subscribed_types(),
        "outbox": outbox_rows(order_id=order_id),
        "inbox": inbox_rows(order_id=order_id),
        "dead_letters": dead_letters(order_id=order_id),
        "records": service_records(order_id=order_id),
    }

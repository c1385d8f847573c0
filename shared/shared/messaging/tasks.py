"""The two tasks every service's worker runs. Names are wire contracts: never rename them."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import Reject

from shared.messaging import inbox, partitions, relay
from shared.messaging.events import MalformedEvent
from shared.observability.metrics import MESSAGES_REJECTED

logger = logging.getLogger(__name__)


@shared_task(name=relay.DELIVER_TASK, acks_late=True)
def deliver_event(envelope: dict) -> None:
    """Consume one event from `<service>.events`."""
    try:
        inbox.deliver(envelope)
    except MalformedEvent as exc:
        logger.error(
            "event dead-lettered", extra={"error": str(exc), "reason": exc.reason, "event_id": _id(envelope)}
        )
        MESSAGES_REJECTED.labels(reason=exc.reason).inc()
        raise Reject(str(exc), requeue=False) from exc
    except Exception as exc:
        # Back to the queue: the quorum queue counts the delivery and dead-letters past its limit.
        logger.exception("event handling failed; returned to the queue", extra={"event_id": _id(envelope)})
        raise Reject(str(exc), requeue=True) from exc


@shared_task(name="messaging.relay_outbox", acks_late=True)
def relay_outbox() -> int:
    """The periodic sweep: publishes what the fast path left behind."""
    return relay.sweep()


@shared_task(name="messaging.maintain_partitions")
def maintain_partitions() -> dict:
    """Create the outbox's and inbox's partitions ahead and drop the expired ones."""
    return partitions.maintain().as_dict()


def _id(envelope) -> str | None:
    return envelope.get("id") if isinstance(envelope, dict) else None

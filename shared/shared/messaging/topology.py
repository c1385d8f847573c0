"""The broker topology, declared in code and applied idempotently at start.

- `domain.events`: the durable topic exchange every event is published to, routing key = event type.
  Its alternate exchange `domain.unroutable` catches events no queue is bound for, into the queue of
  the same name, instead of RabbitMQ dropping them silently.
- `<service>.events`: one durable quorum queue per service, bound to exactly the event types it
  subscribes to. A delivery limit dead-letters a message that keeps failing (a poison message) to
  `domain.dead-letter`, routed to `<service>.dead-letter`, where an operator can look and replay.
- `<service>.tasks`: the service's own work (periodic sweeps and local jobs), same guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Exchange, Queue, binding

EVENTS_EXCHANGE_NAME = "domain.events"
UNROUTABLE_NAME = "domain.unroutable"
DEAD_LETTER_EXCHANGE_NAME = "domain.dead-letter"

unroutable_exchange = Exchange(UNROUTABLE_NAME, type="fanout", durable=True)
events_exchange = Exchange(
    EVENTS_EXCHANGE_NAME, type="topic", durable=True, arguments={"alternate-exchange": UNROUTABLE_NAME}
)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE_NAME, type="direct", durable=True)
unroutable_queue = Queue(
    UNROUTABLE_NAME, exchange=unroutable_exchange, durable=True, queue_arguments={"x-queue-type": "quorum"}
)


def _quorum_arguments(service: str, delivery_limit: int) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE_NAME,
        "x-dead-letter-routing-key": service,
    }


def events_queue_name(service: str) -> str:
    return f"{service}.events"


def tasks_queue_name(service: str) -> str:
    return f"{service}.tasks"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.dead-letter"


def events_queue(service: str, event_types: Iterable[str], delivery_limit: int) -> Queue:
    """`<service>.events`, bound to `domain.events` once per subscribed event type."""
    return Queue(
        events_queue_name(service),
        bindings=[binding(events_exchange, routing_key=event_type) for event_type in sorted(event_types)],
        durable=True,
        queue_arguments=_quorum_arguments(service, delivery_limit),
    )


def tasks_queue(service: str, delivery_limit: int) -> Queue:
    name = tasks_queue_name(service)
    return Queue(
        name,
        exchange=Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=_quorum_arguments(service, delivery_limit),
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(
        dead_letter_queue_name(service),
        exchange=dead_letter_exchange,
        routing_key=service,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def service_queues(service: str, event_types: Iterable[str], delivery_limit: int) -> list[Queue]:
    """The queues a service's worker consumes (Celery declares them, with bindings, at worker start)."""
    return [events_queue(service, event_types, delivery_limit), tasks_queue(service, delivery_limit)]


def declare(connection, service: str, event_types: Iterable[str], delivery_limit: int) -> None:
    """Declare everything a service relies on. Safe to run any number of times, from any process."""
    channel = connection.default_channel
    for exchange in (unroutable_exchange, events_exchange, dead_letter_exchange):
        exchange(channel).declare()
    for queue in (
        unroutable_queue,
        dead_letter_queue(service),
        *service_queues(service, event_types, delivery_limit),
    ):
        queue(channel).declare()

"""Messages put on the platform's queues by hand: what a worker cannot run, every event held and put back
three times out of order, and an event whose transaction stays open while extra relays sweep."""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from datetime import UTC, datetime

import kombu
from celery import Celery
from psycopg.types.json import Jsonb

from benchmarks.chaos.load import database
from benchmarks.chaos.processes import pids, stopped
from devtools import instance

DELIVER_TASK = "events.deliver"  # shared.messaging's task names: wire contracts
RELAY_TASK = "messaging.relay_outbox"
HELD_EVENT_TYPE = "chaos.held"  # no service subscribes: the relay's publish lands in domain.unroutable

# What a worker cannot run, sent straight to every service's events queue by the bad-messages fault:
# (body, content type, encoding, headers beyond the id).
BAD_MESSAGES = {
    "malformed-json": (b'{"not": json', "application/json", "utf-8", {"task": DELIVER_TASK}),
    "wrong-encoding": (b"\xff\xfe[]", "application/json", "utf-8", {"task": DELIVER_TASK}),
    "pickle": (b"\x80\x04K\x01.", "application/x-python-serialize", "binary", {"task": DELIVER_TASK}),
    "unknown-task": (b"[[], {}, {}]", "application/json", "utf-8", {"task": "nobody.knows_this"}),
    "not-a-task": (b'"just a string"', "application/json", "utf-8", {}),
}
# Well-formed task messages whose event no handler can read, sent to the services that consume events.
BAD_EVENTS = {
    "unknown-version": {"version": 99},
    "missing-fields": {"data": None},
}
_task_messages = Celery(set_as_current=False)


def subscriptions(platform: instance.Platform) -> dict[str, set[str]]:
    """Each service's subscribed event types, as the broker routes them (`domain.events` bindings)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_bindings", "-p", platform.instance.broker_vhost,
         "source_name", "destination_name", "routing_key", "--formatter", "json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    bound: dict[str, set[str]] = {service: set() for service in platform.topology.service_names}
    for binding in json.loads(listing.stdout):
        service, _, kind = binding["destination_name"].rpartition(".")
        key = binding["routing_key"]
        if binding["source_name"] != "domain.events" or kind != "events" or service not in bound:
            continue
        if "#" not in key:  # Celery's native delayed delivery adds a `#.<key>` twin of every binding
            bound[service].add(key)
    return bound


# Bad messages


def list_queues(platform: instance.Platform, *columns: str) -> list[dict]:
    """The instance's queues with `columns` (rabbitmqctl's names: messages counts the ready and the
    delivered-but-unacknowledged ones, which AMQP's passive declare does not see)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", platform.instance.broker_vhost, "name", *columns,
         "--formatter", "json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(listing.stdout)


def publish_bad_messages(platform: instance.Platform) -> dict[str, list[str]]:
    """Send every kind of bad message to every service's events queue; returns service -> message ids."""
    sent: dict[str, list[str]] = {}
    consumed = subscriptions(platform)
    with kombu.Connection(platform.instance.broker_url) as connection:
        producer = connection.Producer()
        for service in platform.topology.service_names:
            queue = f"{service}.events"
            for kind, (body, content_type, encoding, headers) in BAD_MESSAGES.items():
                message_id = f"bad-{kind}-{service}"
                producer.publish(
                    body, exchange="", routing_key=queue, content_type=content_type,
                    content_encoding=encoding, headers={"id": message_id, **headers}, message_id=message_id,
                )  # fmt: skip
                sent.setdefault(service, []).append(message_id)
            for kind, changes in BAD_EVENTS.items():
                if not consumed[service]:
                    continue  # an event for a service with no handler is ignored, whatever it holds
                message_id = f"bad-{kind}-{service}"
                envelope = _envelope(sorted(consumed[service])[0], changes)
                publish_task_message(producer, queue, message_id, envelope)
                sent[service].append(message_id)
    return {service: sorted(ids) for service, ids in sent.items()}


def _envelope(event_type: str, changes: dict) -> dict:
    event_id = str(uuid.uuid4())
    envelope = {
        "id": event_id, "type": event_type, "version": 1, "occurred_at": datetime.now(UTC).isoformat(),
        "source": "chaos", "correlation_id": event_id, "causation_id": None, "data": {},
    }  # fmt: skip
    envelope.update(changes)
    return {name: value for name, value in envelope.items() if value is not None or name == "causation_id"}


def publish_task_message(producer, queue: str, message_id: str, envelope: dict) -> None:
    """An `events.deliver` task message, exactly as the relay builds it (Celery's protocol 2)."""
    message = _task_messages.amqp.as_task_v2(message_id, DELIVER_TASK, args=(envelope,), kwargs={})
    producer.publish(
        message.body, exchange="", routing_key=queue, headers=message.headers, serializer="json",
        delivery_mode=2, **message.properties,
    )  # fmt: skip


# Every saga event three times, out of order


def redeliver_held_events(platform: instance.Platform, seconds: float) -> int:
    """Hold every worker for `seconds` while events pile up in their queues, then put each held message
    back three times in reverse order: first deliveries out of order (e.g. a payment's outcome before the
    reservation it follows), and two duplicates of each, all through the real broker. Returns how many
    messages were held."""
    workers = pids(platform, "-worker")
    held = 0
    with stopped(workers):
        time.sleep(seconds)
        with kombu.Connection(platform.instance.broker_url) as connection:
            producer = connection.Producer(channel=connection.channel())
            for service in platform.topology.service_names:
                held += _reverse_and_triple(connection, producer, f"{service}.events")
    return held


def _reverse_and_triple(connection: kombu.Connection, producer, queue_name: str) -> int:
    queue = kombu.Queue(queue_name, channel=connection.default_channel)
    taken = []
    while (message := queue.get(no_ack=False)) is not None:
        taken.append(message)
    copies = [message for message in reversed(taken) for _ in range(3)]
    tail = copies[len(copies) // 2 :]
    random.Random(queue_name).shuffle(tail)  # noqa: S311 (an order of messages, not a secret)
    copies[len(copies) // 2 :] = tail  # the second half in no order at all
    for message in copies:
        producer.publish(
            message.body, exchange="", routing_key=queue_name, headers=message.headers,
            content_type=message.content_type, content_encoding=message.content_encoding,
            delivery_mode=2, correlation_id=message.properties.get("correlation_id"),
        )  # fmt: skip
    for message in taken:
        message.ack()  # only once the copies are in the queue: a crash here duplicates, never loses
    return len(taken)


# An event whose transaction stays open while extra relays sweep


def hold_a_transaction_while_relays_race(platform: instance.Platform, seconds: float) -> str:
    """Open a business transaction in orders that records an event and stays open for `seconds`, while
    later orders commit and extra relay sweeps run beside the fast path and beat's: a relay that kept a
    high-water mark would skip the late row. Returns the held event's id."""
    event_id = str(uuid.uuid4())
    envelope = _envelope(HELD_EVENT_TYPE, {"data": {"held_seconds": seconds}}) | {"id": event_id}
    with database(platform, "orders", autocommit=False) as db:
        db.execute(
            "INSERT INTO messaging_outboxevent (id, event_type, version, envelope, created_at, attempts, "
            "last_error, correlation_id) VALUES (%s, %s, 1, %s, now(), 0, '', %s)",
            [event_id, HELD_EVENT_TYPE, Jsonb(envelope), event_id],
        )
        deadline = time.monotonic() + seconds
        with kombu.Connection(platform.instance.broker_url) as connection:
            producer = connection.Producer()
            while time.monotonic() < deadline:
                for service in platform.topology.service_names:
                    sweep = _task_messages.amqp.as_task_v2(str(uuid.uuid4()), RELAY_TASK, args=(), kwargs={})
                    producer.publish(
                        sweep.body, exchange="", routing_key=f"{service}.tasks", headers=sweep.headers,
                        serializer="json", **sweep.properties,
                    )  # fmt: skip
                time.sleep(0.25)
        db.commit()
    return event_id


def duplicate_latest_events(platform: instance.Platform, service: str, count: int = 5) -> int:
    """Put copies of the latest events `service` consumes (from their producers' outboxes) on its queue:
    duplicates its inbox skips, and deliveries that reach its worker whatever the load is doing."""
    types = sorted(subscriptions(platform)[service])
    envelopes = []
    for producer in platform.topology.service_names:
        with database(platform, producer) as db:
            envelopes += db.execute(
                "SELECT envelope FROM messaging_outboxevent WHERE event_type = ANY(%s) "
                "AND published_at IS NOT NULL ORDER BY created_at DESC LIMIT %s", [types, count],
            ).fetchall()  # fmt: skip
    with kombu.Connection(platform.instance.broker_url) as connection:
        producer = connection.Producer()
        for (envelope,) in envelopes[:count]:
            publish_task_message(producer, f"{service}.events", str(uuid.uuid4()), envelope)
    return len(envelopes[:count])

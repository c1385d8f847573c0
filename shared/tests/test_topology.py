"""Where messages go when no one wants them, and when a handler can never succeed."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from kombu import Connection, Queue

from shared.messaging import topology
from shared.testing import wait_until
from tests.conftest import SERVICE
from tests.ledger.models import Credit
from tests.ledger.services import account_credit

pytestmark = pytest.mark.django_db(transaction=True)


def _publish_event(event_type: str, data: dict):
    from django.db import transaction

    from shared.messaging.events import publish_event

    with transaction.atomic():
        return publish_event(event_type, data)


def _queue_depth(broker_url: str, name: str) -> int:
    with Connection(broker_url) as conn:
        _name, messages, _consumers = conn.default_channel.queue_declare(queue=name, passive=True)
        return messages


def test_queue_bindings_are_derived_from_the_subscriptions():
    queue = topology.events_queue(
        SERVICE, sorted(settings.EVENT_SUBSCRIPTIONS), settings.EVENTS_DELIVERY_LIMIT
    )
    assert queue.name == "shared_tests.events"
    assert sorted(b.routing_key for b in queue.bindings) == ["ledger.credited", "ledger.poisoned"]
    assert queue.queue_arguments["x-queue-type"] == "quorum"
    assert queue.queue_arguments["x-delivery-limit"] == settings.EVENTS_DELIVERY_LIMIT
    assert queue.queue_arguments["x-dead-letter-exchange"] == "domain.dead-letter"


def test_declaring_the_topology_twice_is_harmless(broker_url):
    with Connection(broker_url) as conn:
        for _ in range(2):
            topology.declare(
                conn, SERVICE, sorted(settings.EVENT_SUBSCRIPTIONS), settings.EVENTS_DELIVERY_LIMIT
            )


def test_an_event_no_queue_is_bound_to_lands_in_the_unroutable_queue(observe, broker_url):
    unroutable = observe([""], exchange=topology.unroutable_exchange)
    subscribed = observe(["ledger.credited", "ledger.poisoned"])
    depth_before = _queue_depth(broker_url, "domain.unroutable")

    event = _publish_event("ledger.noted", {"note": "no subscriber"})
    marker = _publish_event("ledger.credited", {"account": "after-nobody-listens", "amount": 1})

    assert unroutable.wait_for(1) == [event.id]
    assert subscribed.wait_for(1) == [marker.id]  # the unrouted event, had it been routed, came first
    wait_until(lambda: _queue_depth(broker_url, "domain.unroutable") == depth_before + 1, message="depth")


def test_a_handler_that_always_fails_is_dead_lettered_and_other_messages_keep_flowing(worker, broker_url):
    poison = _publish_event("ledger.poisoned", {"note": "always fails"})
    good = account_credit(account="after-poison", amount=2)

    handled = wait_until(
        lambda: Credit.objects.filter(event_id=good.id).exists(), timeout=60, message="handled"
    )
    assert handled
    dead_letters: list = []

    def poison_dead_lettered():
        dead_letters.extend(_drain(broker_url, f"{SERVICE}.dead-letter"))
        return next((dead for dead in dead_letters if dead[0].get("id") == poison.id), None)

    headers, body = wait_until(poison_dead_lettered, timeout=30, message="dead letter")
    assert headers["id"] == poison.id
    assert body[0][0]["type"] == "ledger.poisoned"
    deaths = headers.get("x-death") or []
    assert deaths and deaths[0]["queue"] == f"{SERVICE}.events"
    assert deaths[0]["reason"] == "delivery_limit"
    # Delivered once plus one redelivery per allowed retry, then parked: never looped forever.
    attempts = sum("event handling failed" in line and poison.id in line for line in worker.lines)
    assert attempts == settings.EVENTS_DELIVERY_LIMIT + 1
    assert _queue_depth(broker_url, f"{SERVICE}.events") == 0


def _drain(broker_url: str, queue_name: str) -> list[tuple[dict, object]]:
    """Take every message now in a queue: (headers, decoded body) pairs."""
    taken = []
    with Connection(broker_url) as conn:
        queue = Queue(queue_name, channel=conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            taken.append((message.headers, json.loads(message.body)))
    return taken

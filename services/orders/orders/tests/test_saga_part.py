"""orders' part of an order's saga (GET /internal/v1/saga/<order_id>/, shared.saga), which the timeline
reads from its own tables and other services could read too: the events orders published and consumed
about the order and its status history, for services only."""

from __future__ import annotations

import json
import uuid

import pytest

from orders import services
from orders.services import LineRequest
from orders.tests.helpers import ADDRESS, deliver
from shared.saga.testing import assert_saga_part_is_for_services_only, saga_part, saga_part_schema_errors

pytestmark = pytest.mark.django_db


def test_a_placed_then_reserved_order_shows_its_events_and_its_history(catalog):
    pen = catalog.add(name="Pen", price="1.50")
    order = services.order_create(
        user_id=uuid.uuid4(),
        customer_email="carla@example.com",
        lines=[LineRequest(product_id=uuid.UUID(pen["id"]), quantity=2)],
        payment_token="tok_visa_4242",
        shipping_address=dict(ADDRESS),
    )
    reserved, _handled = deliver("on_inventory_reserved", "inventory.reserved", {"order_id": str(order.id)})
    deliver("on_inventory_reserved", "inventory.reserved", reserved.data, event=reserved)  # redelivered

    part = saga_part(order.id)

    assert part["service"] == "orders"
    assert [row["event_type"] for row in part["outbox"]] == ["order.created"]
    assert [(row["event_id"], row["deliveries"]) for row in part["inbox"]] == [(reserved.id, 2)]
    assert [(record["kind"], record["status"]) for record in part["records"]] == [
        ("status", "pending"),
        ("status", "awaiting_payment"),
    ]
    assert "tok_visa_4242" not in json.dumps(part)  # order.created carries the card token: never shown
    assert saga_part_schema_errors(part) == []


def test_an_order_orders_never_saw_is_an_empty_part():
    part = saga_part(uuid.uuid4())

    assert (part["outbox"], part["inbox"], part["records"]) == ([], [], [])


def test_only_services_with_the_scope_may_read_it():
    assert_saga_part_is_for_services_only(uuid.uuid4())

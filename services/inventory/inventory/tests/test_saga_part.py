"""inventory's part of an order's saga (GET /internal/v1/saga/<order_id>/, shared.saga), for orders' timeline:
the events it consumed and published about the order and its reservation, for services only."""

from __future__ import annotations

import uuid

import pytest

from inventory.tests.helpers import event_data, line, order_created_data
from shared.messaging import inbox
from shared.messaging.events import new_event
from shared.saga.testing import assert_saga_part_is_for_services_only, saga_part, saga_part_schema_errors

pytestmark = pytest.mark.django_db


def test_a_reserved_order_shows_what_came_in_what_went_out_and_the_reservation(make_stock):
    stock = make_stock(10)
    data = order_created_data(None, [line(stock.product_id, 3)])
    envelope = new_event("order.created", data).as_envelope()
    inbox.deliver(envelope)
    inbox.deliver(envelope)  # redelivered: skipped, and counted

    part = saga_part(data["order_id"])

    assert part["service"] == "inventory"
    assert "order.created" in part["consumes"]
    assert [(row["event_type"], row["event_id"], row["deliveries"]) for row in part["inbox"]] == [
        ("order.created", envelope["id"], 2)
    ]
    assert [row["event_type"] for row in part["outbox"]] == ["inventory.reserved"]
    assert part["outbox"][0]["causation_id"] == envelope["id"]
    (reservation,) = part["records"]
    assert (reservation["kind"], reservation["status"], reservation["admin_model"]) == (
        "reservation",
        "held",
        "inventory.reservation",
    )
    assert reservation["details"]["lines"] == [{"product_id": str(stock.product_id), "quantity": 3}]
    assert saga_part_schema_errors(part) == []


def test_a_released_reservation_shows_when_it_was_made_and_what_it_is_now(make_stock):
    stock = make_stock(10)
    data = order_created_data(None, [line(stock.product_id, 3)])
    inbox.deliver(new_event("order.created", data).as_envelope())
    cancelled = event_data("order.cancelled", order_id=data["order_id"], reason="customer_cancelled")
    inbox.deliver(new_event("order.cancelled", cancelled).as_envelope())

    records = saga_part(data["order_id"])["records"]

    assert [record["status"] for record in records] == ["held", "released"]


def test_an_order_inventory_never_saw_is_an_empty_part():
    part = saga_part(uuid.uuid4())

    assert (part["outbox"], part["inbox"], part["records"]) == ([], [], [])


def test_only_services_with_the_scope_may_read_it():
    assert_saga_part_is_for_services_only(uuid.uuid4())

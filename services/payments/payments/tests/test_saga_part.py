"""payments' part of an order's saga (GET /internal/v1/saga/<order_id>/, shared.saga), for orders' timeline:
the events it consumed and published about the order, its payment, charge attempts and refund; never the
card token; for services only."""

from __future__ import annotations

import json
import uuid

import pytest

from payments import services
from payments.tests.helpers import deliver, reserved_event
from shared.saga.testing import assert_saga_part_is_for_services_only, saga_part, saga_part_schema_errors

pytestmark = pytest.mark.django_db


def test_a_paid_and_refunded_order_shows_the_payment_its_charge_and_its_refund(tasks, committed):
    event = reserved_event(token="tok_visa")
    order_id = event.data["order_id"]
    deliver(event, committed)
    deliver(event, committed)  # redelivered: skipped, and counted
    tasks.run_all()  # the charge
    payment_id = saga_part(order_id)["records"][0]["object_id"]
    with committed():
        services.payment_request_refund(payment_id=payment_id)
    tasks.run_all()  # the refund

    part = saga_part(order_id)

    assert part["service"] == "payments"
    assert [(row["event_type"], row["deliveries"]) for row in part["inbox"]] == [("inventory.reserved", 2)]
    assert [row["event_type"] for row in part["outbox"]] == ["payment.succeeded", "payment.refunded"]
    assert [(record["kind"], record["status"]) for record in part["records"]] == [
        ("payment", "pending"),
        ("charge", "refunded"),
        ("refund", "refunded"),
    ]
    charge = part["records"][1]
    assert charge["details"]["attempts"] == 1 and charge["details"]["provider_charge_id"]
    assert {record["admin_model"] for record in part["records"]} == {"payments.payment"}
    assert "tok_visa" not in json.dumps(part)
    assert saga_part_schema_errors(part) == []


def test_a_declined_card_shows_the_failure(tasks, committed):
    event = reserved_event(token="tok_chargeDeclined")
    deliver(event, committed)
    tasks.run_all()

    part = saga_part(event.data["order_id"])

    assert [row["event_type"] for row in part["outbox"]] == ["payment.failed"]
    charge = part["records"][-1]
    assert (charge["kind"], charge["status"], charge["details"]["failure_reason"]) == (
        "charge",
        "failed",
        "payment_declined",
    )


def test_an_order_payments_never_saw_is_an_empty_part():
    part = saga_part(uuid.uuid4())

    assert (part["outbox"], part["inbox"], part["records"]) == ([], [], [])


def test_only_services_with_the_scope_may_read_it():
    assert_saga_part_is_for_services_only(uuid.uuid4())

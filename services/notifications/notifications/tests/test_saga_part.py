"""notifications' part of an order's saga (GET /internal/v1/saga/<order_id>/, shared.saga), for orders'
timeline: the events it consumed about the order and the e-mails it sent, for services only."""

from __future__ import annotations

import uuid

import pytest

from notifications.tests.helpers import make_event
from shared.saga.testing import assert_saga_part_is_for_services_only, saga_part, saga_part_schema_errors

pytestmark = pytest.mark.django_db


def test_a_confirmed_then_refunded_order_shows_its_events_and_its_e_mails(deliver, run_queued_sends):
    order_id = str(uuid.uuid4())
    confirmed = make_event("order.confirmed", order_id=order_id)
    deliver(confirmed)
    deliver(confirmed)  # redelivered: skipped, and counted
    deliver(make_event("payment.refunded", order_id=order_id))
    run_queued_sends()
    deliver(make_event("order.confirmed"))  # another order's

    part = saga_part(order_id)

    assert part["service"] == "notifications"
    assert [(row["event_type"], row["deliveries"]) for row in part["inbox"]] == [
        ("order.confirmed", 2),
        ("payment.refunded", 1),
    ]
    assert part["outbox"] == []
    assert [
        (record["kind"], record["status"], record["details"]["event_type"]) for record in part["records"]
    ] == [
        ("notification", "sent", "order.confirmed"),
        ("notification", "sent", "payment.refunded"),
    ]
    assert part["records"][0]["summary"] == "order_confirmed e-mail sent"
    assert part["records"][0]["admin_model"] == "notifications.notification"
    assert saga_part_schema_errors(part) == []


def test_an_order_notifications_never_saw_is_an_empty_part():
    part = saga_part(uuid.uuid4())

    assert (part["outbox"], part["inbox"], part["records"]) == ([], [], [])


def test_only_services_with_the_scope_may_read_it():
    assert_saga_part_is_for_services_only(uuid.uuid4())

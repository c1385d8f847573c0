"""Event handlers through the inbox: effects, duplicates (same event twice), late and racing events."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.utils.dateparse import parse_datetime

from payments import services
from payments.models import Payment
from payments.tests.helpers import (
    HANDLERS,
    cancelled_event,
    captured_payment,
    create_payment,
    deliver,
    events,
    expired_event,
    published_types,
    reserved_event,
)
from shared.messaging.events import new_event
from shared.messaging.inbox import handle_once
from shared.testing import domain_event

pytestmark = pytest.mark.django_db

Status = Payment.Status


# inventory.reserved


def test_inventory_reserved_creates_the_payment_and_its_charge_captures(provider, tasks, committed):
    event = reserved_event(total="25.00")

    assert deliver(event, committed) is True

    payment = Payment.objects.get()
    data = event.data
    assert str(payment.order_id) == data["order_id"]
    assert str(payment.user_id) == data["user_id"]
    assert payment.reservation_id == data["reservation_id"]
    assert (payment.amount, payment.currency, payment.payment_token) == (Decimal("25.00"), "USD", "tok_visa")
    assert payment.customer_email == "carla@example.com"
    assert payment.expires_at == parse_datetime(data["expires_at"])
    assert tasks.names() == [("payments.payment_charge", (str(payment.id),))]

    tasks.run_all()

    assert Payment.objects.get().status == Status.CAPTURED
    assert events("payment.succeeded")[0]["amount"] == "25.00"


def test_inventory_reserved_delivered_twice_creates_one_payment_and_one_charge(provider, tasks, committed):
    event = reserved_event()

    assert deliver(event, committed) is True
    assert deliver(event, committed) is False  # the inbox saw it
    tasks.run_all()

    assert Payment.objects.count() == 1
    assert provider.ledger()["charges"] == 1
    assert len(events("payment.succeeded")) == 1


def test_a_second_reservation_event_for_the_same_order_changes_nothing(provider, tasks, committed):
    first = reserved_event()
    deliver(first, committed)
    tasks.run_all()
    again = reserved_event(first.data["order_id"], total="99.00")  # another event id, same order

    assert deliver(again, committed) is True

    assert tasks.queued == []
    payment = Payment.objects.get()
    assert (payment.status, payment.amount) == (Status.CAPTURED, Decimal("12.50"))
    assert provider.ledger()["charges"] == 1


def test_a_reservation_that_arrives_already_expired_is_voided_without_a_charge(provider, tasks, committed):
    deliver(reserved_event(expires_in=-1), committed)
    tasks.run_all()

    payment = Payment.objects.get()
    assert (payment.status, payment.failure_reason) == (Status.VOIDED, "payment_timeout")
    assert provider.requests_received() == 0
    assert [event["reason"] for event in events("payment.failed")] == ["payment_timeout"]


def test_a_malformed_reservation_event_fails_and_leaves_nothing(committed):
    # Broken on purpose (no user_id): the worker would dead-letter it before the handler (shared.contracts);
    # the handler must still fail rather than half-apply it.
    event = new_event("inventory.reserved", {"order_id": str(uuid.uuid4()), "total": "12.50"})

    with pytest.raises(KeyError):
        deliver(event, committed)

    assert Payment.objects.count() == 0


# inventory.reservation_expired


def test_reservation_expired_voids_a_pending_payment_and_its_charge_does_nothing(provider, tasks, committed):
    with committed():
        payment = create_payment()
    event = expired_event(payment.order_id)

    assert deliver(event, committed) is True
    assert deliver(event, committed) is False
    tasks.run_all()  # the charge task queued at creation

    payment.refresh_from_db()
    assert (payment.status, payment.void_requested, payment.failure_reason) == (
        Status.VOIDED,
        True,
        "payment_timeout",
    )
    assert events("payment.failed") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "reason": "payment_timeout",
            "message": "The stock reservation expired before the payment was taken.",
        }
    ]
    assert provider.requests_received() == 0


def test_reservation_expired_leaves_a_captured_payment_alone(committed):
    payment = captured_payment()

    deliver(expired_event(payment.order_id), committed)

    payment.refresh_from_db()
    assert payment.status == Status.CAPTURED
    assert published_types() == ["payment.succeeded"]


def test_reservation_expired_for_an_unknown_order_does_nothing(committed):
    assert deliver(expired_event(uuid.uuid4()), committed) is True

    assert Payment.objects.count() == 0
    assert published_types() == []


# order.cancelled


def test_order_cancelled_refunds_a_captured_payment_exactly_once(provider, tasks, committed):
    payment = captured_payment()
    event = cancelled_event(payment.order_id)

    assert deliver(event, committed) is True
    assert deliver(event, committed) is False  # duplicate delivery
    assert deliver(cancelled_event(payment.order_id), committed) is True  # another event, same order
    assert tasks.names() == [("payments.payment_refund", (str(payment.id),))]
    tasks.run_all()

    payment.refresh_from_db()
    assert payment.status == Status.REFUNDED
    assert (payment.void_requested, payment.refund_requested) == (True, True)
    assert provider.ledger()["refunds"] == 1
    assert provider.ledger()["refunded_total"] == "12.50"
    assert len(provider.refunds_of(payment.provider_charge_id)) == 1
    assert events("payment.refunded") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "amount": "12.50",
            "currency": "USD",
            "user_id": str(payment.user_id),
            "customer_email": "carla@example.com",
        }
    ]


def test_a_refund_task_run_twice_refunds_once(provider, tasks, committed):
    payment = captured_payment()
    deliver(cancelled_event(payment.order_id), committed)
    tasks.queued.extend(list(tasks.queued))  # the broker delivered the task twice

    assert tasks.run_all() == 2

    assert provider.ledger()["refunds"] == 1
    assert len(events("payment.refunded")) == 1


def test_order_cancelled_voids_a_pending_payment_and_nothing_is_charged(provider, tasks, committed):
    with committed():
        payment = create_payment()

    deliver(cancelled_event(payment.order_id, previous_status="awaiting_payment"), committed)
    tasks.run_all()

    payment.refresh_from_db()
    assert (payment.status, payment.void_requested) == (Status.VOIDED, True)
    assert payment.failure_reason == ""
    assert provider.requests_received() == 0
    assert published_types() == []  # orders cancelled it: nothing to announce


def test_order_cancelled_first_leaves_a_tombstone_and_a_late_reservation_charges_nothing(
    provider, tasks, committed
):
    order_id = str(uuid.uuid4())

    deliver(cancelled_event(order_id, previous_status="pending"), committed)
    tombstone = Payment.objects.get()
    assert (tombstone.status, tombstone.amount, tombstone.void_requested) == (Status.VOIDED, 0, True)
    assert tombstone.is_tombstone

    deliver(reserved_event(order_id), committed)
    tasks.run_all()

    assert Payment.objects.get() == tombstone
    assert Payment.objects.get().status == Status.VOIDED
    assert tasks.queued == []
    assert provider.requests_received() == 0
    assert published_types() == []


def test_order_cancelled_for_a_failed_payment_changes_nothing(committed):
    payment = services.payment_charge(payment_id=create_payment(token="tok_chargeDeclined").id)

    deliver(cancelled_event(payment.order_id), committed)

    payment.refresh_from_db()
    assert (payment.status, payment.refund_requested) == (Status.FAILED, False)
    assert published_types() == ["payment.failed"]


# order.confirmed / order.rejected: subscribed, no money moves


@pytest.mark.parametrize("event_type", ["order.confirmed", "order.rejected"])
def test_order_confirmed_and_rejected_move_no_money(event_type, provider, committed):
    payment = captured_payment()
    event = domain_event(event_type, order_id=str(payment.order_id), user_id=str(payment.user_id))

    assert deliver(event, committed) is True
    assert deliver(event, committed) is False

    payment.refresh_from_db()
    assert payment.status == Status.CAPTURED
    assert published_types() == ["payment.succeeded"]
    assert provider.ledger()["refunds"] == 0


def test_the_settings_subscribe_every_event_the_design_lists(settings):
    assert settings.EVENT_SUBSCRIPTIONS == {
        "inventory.reserved": "payments.handlers.on_inventory_reserved",
        "inventory.reservation_expired": "payments.handlers.on_inventory_reservation_expired",
        "order.cancelled": "payments.handlers.on_order_cancelled",
        "order.confirmed": "payments.handlers.on_order_confirmed",
        "order.rejected": "payments.handlers.on_order_rejected",
    }
    assert settings.CELERY_BEAT_SCHEDULE["payments-retry-due"] == {
        "task": "payments.payments_retry_due",
        "schedule": settings.PAYMENT_SWEEP_SECONDS,
    }


# A real race: two worker threads, two connections


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("repeat", range(3))
def test_cancel_and_reservation_racing_leave_one_voided_row_and_no_charge(repeat, provider, tasks):
    order_id = str(uuid.uuid4())
    racing = [reserved_event(order_id), cancelled_event(order_id, previous_status="pending")]
    start = threading.Barrier(len(racing))
    errors: list = []

    def handle(event):
        try:
            start.wait()
            handler = HANDLERS[event.type]
            handle_once(f"payments.handlers.{handler.__name__}", handler, event)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=handle, args=(event,)) for event in racing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tasks.run_all()

    assert errors == []
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.void_requested) == (Status.VOIDED, True)
    assert provider.requests_received() == 0
    assert published_types() == []

"""Builders and assertions for payments' tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from payments import clients, handlers, services
from payments.models import Payment
from shared.messaging.inbox import handle_once
from shared.messaging.models import OutboxEvent
from shared.testing import domain_event, outbox_envelopes

USER_ID = "7d0c8f0e-5a4b-4a53-9d1e-3f1b2c4d5e6f"
OTHER_USER_ID = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f40516"
STAFF_ID = "0a0b0c0d-0e0f-4011-8213-141516171819"


HANDLERS = {
    "inventory.reserved": handlers.on_inventory_reserved,
    "inventory.reservation_expired": handlers.on_inventory_reservation_expired,
    "order.cancelled": handlers.on_order_cancelled,
    "order.confirmed": handlers.on_order_confirmed,
    "order.rejected": handlers.on_order_rejected,
}


def deliver(event, committed) -> bool:
    """Hand an event to its handler the way the worker does (inbox row + effect), then commit."""
    handler = HANDLERS[event.type]
    with committed():
        return handle_once(f"payments.handlers.{handler.__name__}", handler, event)


def reserved_event(order_id=None, *, user_id=USER_ID, total="12.50", token="tok_visa", expires_in=300):
    """`inventory.reserved` built from its contract (shared.contracts), for this order and payment."""
    return domain_event(
        "inventory.reserved",
        order_id=str(order_id or uuid.uuid4()),
        reservation_id=str(uuid.uuid4()),
        expires_at=(timezone.now() + timedelta(seconds=expires_in)).isoformat(),
        user_id=user_id,
        customer_email="carla@example.com",
        lines=[{"product_id": str(uuid.uuid4()), "quantity": 2}],
        total=total,
        currency="USD",
        payment_token=token,
    )


def expired_event(order_id):
    return domain_event(
        "inventory.reservation_expired", order_id=str(order_id), reservation_id=str(uuid.uuid4())
    )


def cancelled_event(order_id, *, user_id=USER_ID, previous_status="confirmed"):
    return domain_event(
        "order.cancelled",
        order_id=str(order_id),
        user_id=user_id,
        customer_email="carla@example.com",
        reason="customer_cancelled",
        previous_status=previous_status,
        total="12.50",
        currency="USD",
        lines=[{"product_id": str(uuid.uuid4()), "name": "Lamp", "unit_price": "6.25", "quantity": 2}],
    )


def create_payment(
    *, token="tok_visa", total="12.50", expires_in=300, user_id=USER_ID, order_id=None
) -> Payment:
    """A pending payment as `inventory.reserved` creates it (its queued task is not run)."""
    return services.payment_create_for_reservation(
        order_id=str(order_id or uuid.uuid4()),
        reservation_id=str(uuid.uuid4()),
        user_id=user_id,
        customer_email="carla@example.com",
        amount=Decimal(total),
        currency="USD",
        payment_token=token,
        expires_at=timezone.now() + timedelta(seconds=expires_in),
    )


def captured_payment(**kwargs) -> Payment:
    payment = services.payment_charge(payment_id=create_payment(**kwargs).id)
    assert payment.status == Payment.Status.CAPTURED
    return payment


def events(event_type: str) -> list[dict]:
    """The data of every outbox event of a type, oldest first."""
    return [envelope["data"] for envelope in outbox_envelopes(event_type)]


def published_types() -> list[str]:
    return list(OutboxEvent.objects.order_by("created_at").values_list("event_type", flat=True))


def expire_mid_charge(payment: Payment, monkeypatch, committed) -> None:
    """The reservation expires while the payment's charge request is on its way to the provider."""
    send_charge = clients.create_charge

    def expiry_arrives_mid_flight(**kwargs):
        deliver(expired_event(payment.order_id), committed)
        return send_charge(**kwargs)

    monkeypatch.setattr(clients, "create_charge", expiry_arrives_mid_flight)


def make_due(payment: Payment) -> None:
    """Skip the backoff: what the clock would do for the sweep."""
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

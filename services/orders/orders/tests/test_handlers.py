"""The saga's status machine through orders' event handlers (inbox included), per docs/saga.md."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from orders import services
from orders.models import Order, OrderStatusChange, ProductReadModel
from orders.tests.helpers import deliver, make_order, outbox
from shared.messaging import inbox, subscriptions
from shared.messaging.events import new_event
from shared.messaging.models import OutboxEvent
from shared.testing import event_data

pytestmark = pytest.mark.django_db


# Payloads built from the events' contracts (shared.contracts), for the given order.


def reserved(order: Order) -> dict:
    """An inventory.reserved payload as inventory sends it."""
    return event_data(
        "inventory.reserved",
        order_id=str(order.id),
        reservation_id=str(uuid.uuid4()),
        expires_at=(datetime.now(UTC) + timedelta(minutes=15)).isoformat(),
        user_id=str(order.user_id),
        customer_email=order.customer_email,
        lines=[{"product_id": str(item.product_id), "quantity": item.quantity} for item in order.items.all()],
        total=f"{order.total:.2f}",
        currency=order.currency,
    )


def succeeded(order: Order) -> dict:
    return event_data(
        "payment.succeeded", order_id=str(order.id), payment_id=str(uuid.uuid4()), amount="7.25"
    )


def failed(order: Order, reason: str = "payment_declined") -> dict:
    return event_data(
        "payment.failed",
        order_id=str(order.id),
        payment_id=str(uuid.uuid4()),
        reason=reason,
        message="Declined",
    )


def expired(order: Order) -> dict:
    return event_data(
        "inventory.reservation_expired", order_id=str(order.id), reservation_id=str(uuid.uuid4())
    )


def reservation_failed(order: Order, reason: str = "out_of_stock") -> dict:
    return event_data(
        "inventory.reservation_failed", order_id=str(order.id), reason=reason, product_ids=[str(uuid.uuid4())]
    )


def refunded(order: Order) -> dict:
    return event_data(
        "payment.refunded",
        order_id=str(order.id),
        payment_id=str(uuid.uuid4()),
        amount="7.25",
        user_id=str(order.user_id),
        customer_email=order.customer_email,
    )


def lines_of(order: Order) -> list[dict]:
    return [
        {
            "product_id": str(item.product_id),
            "name": item.name,
            "unit_price": str(item.unit_price),
            "quantity": item.quantity,
        }
        for item in order.items.all()
    ]


def status_of(order: Order) -> tuple[str, str]:
    order.refresh_from_db()
    return order.status, order.status_reason


def history_of(order: Order) -> list[tuple[str, str]]:
    return list(
        OrderStatusChange.objects.filter(order=order).order_by("at", "id").values_list("status", "reason")
    )


# Subscriptions


def test_every_subscribed_event_type_has_an_importable_handler():
    assert subscriptions.check_handlers_importable() == []
    assert sorted(settings.EVENT_SUBSCRIPTIONS) == [
        "inventory.reservation_expired",
        "inventory.reservation_failed",
        "inventory.reserved",
        "payment.failed",
        "payment.refunded",
        "payment.succeeded",
        "product.created",
        "product.deleted",
        "product.updated",
    ]


def test_an_event_delivered_like_the_worker_does_reaches_its_handler():
    order = make_order(status="awaiting_payment")

    inbox.deliver(new_event("payment.succeeded", succeeded(order)).as_envelope())

    assert status_of(order) == ("confirmed", "")


# inventory.reserved


def test_inventory_reserved_moves_a_pending_order_to_awaiting_payment():
    order = make_order()

    deliver("on_inventory_reserved", "inventory.reserved", reserved(order))

    assert status_of(order) == ("awaiting_payment", "")
    assert history_of(order) == [("pending", ""), ("awaiting_payment", "")]
    assert OutboxEvent.objects.count() == 0  # no event of orders' own for this step


def test_inventory_reserved_delivered_again_changes_nothing():
    order = make_order()
    event, _ = deliver("on_inventory_reserved", "inventory.reserved", reserved(order))

    _, handled = deliver("on_inventory_reserved", "inventory.reserved", {}, event=event)
    deliver("on_inventory_reserved", "inventory.reserved", reserved(order))  # a second, different event

    assert handled is False
    assert status_of(order) == ("awaiting_payment", "")
    assert len(history_of(order)) == 2


@pytest.mark.parametrize("status", ["confirmed", "cancelled", "rejected"])
def test_inventory_reserved_after_the_order_moved_on_does_nothing(status):
    order = make_order(status=status)

    deliver("on_inventory_reserved", "inventory.reserved", reserved(order))

    assert status_of(order) == (status, "")
    assert len(history_of(order)) == 2


def test_an_event_for_an_order_we_do_not_have_changes_nothing():
    _, handled = deliver("on_payment_succeeded", "payment.succeeded", {"order_id": str(uuid.uuid4())})

    assert handled is True
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


# inventory.reservation_failed


@pytest.mark.parametrize("reason", ["out_of_stock", "unknown_product"])
def test_reservation_failed_rejects_a_pending_order_and_publishes_order_rejected(reason):
    order = make_order()

    deliver(
        "on_inventory_reservation_failed", "inventory.reservation_failed", reservation_failed(order, reason)
    )

    assert status_of(order) == ("rejected", reason)
    assert history_of(order) == [("pending", ""), ("rejected", reason)]
    assert outbox() == [
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": "carla@example.com",
            "reason": reason,
        }
    ]
    assert order.terminal_at is not None
    assert order.confirmed_at is None


def test_reservation_failed_with_a_reason_outside_the_contract_still_rejects():
    order = make_order()

    deliver(
        "on_inventory_reservation_failed",
        "inventory.reservation_failed",
        reservation_failed(order, "gremlins"),
    )

    assert status_of(order) == ("rejected", "out_of_stock")


@pytest.mark.parametrize("status", ["awaiting_payment", "confirmed", "cancelled"])
def test_reservation_failed_after_the_order_moved_on_does_nothing(status):
    order = make_order(status=status)

    deliver("on_inventory_reservation_failed", "inventory.reservation_failed", reservation_failed(order))

    assert status_of(order) == (status, "")
    assert OutboxEvent.objects.count() == 0


# payment.succeeded


def test_payment_succeeded_confirms_and_publishes_order_confirmed():
    order = make_order(status="awaiting_payment")

    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))

    assert status_of(order) == ("confirmed", "")
    assert order.confirmed_at is not None
    assert order.terminal_at == order.confirmed_at
    assert outbox() == [
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": "carla@example.com",
            "total": "7.25",
            "currency": "USD",
            "lines": lines_of(order),
        }
    ]


def test_payment_succeeded_overtaking_inventory_reserved_confirms_and_the_late_reservation_is_ignored():
    order = make_order()

    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))
    deliver("on_inventory_reserved", "inventory.reserved", reserved(order))

    assert status_of(order) == ("confirmed", "")
    assert history_of(order) == [("pending", ""), ("confirmed", "")]
    assert [event.event_type for event in OutboxEvent.objects.all()] == ["order.confirmed"]


@pytest.mark.parametrize("status", ["cancelled", "rejected", "confirmed"])
def test_payment_succeeded_for_a_finished_order_does_nothing(status):
    order = make_order(status=status)

    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))

    assert status_of(order) == (status, "")
    assert len(history_of(order)) == 2
    assert OutboxEvent.objects.count() == 0


# payment.failed


@pytest.mark.parametrize("previous", ["pending", "awaiting_payment"])
@pytest.mark.parametrize("reason", ["payment_declined", "payment_unavailable", "payment_timeout"])
def test_payment_failed_cancels_an_unpaid_order_and_publishes_order_cancelled(previous, reason):
    order = make_order(status=previous)

    deliver("on_payment_failed", "payment.failed", failed(order, reason))

    assert status_of(order) == ("cancelled", reason)
    assert history_of(order)[-1] == ("cancelled", reason)
    assert outbox() == [
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": "carla@example.com",
            "reason": reason,
            "previous_status": previous,
            "total": "7.25",
            "currency": "USD",
            "lines": lines_of(order),
        }
    ]


@pytest.mark.parametrize("status", ["confirmed", "cancelled", "rejected"])
def test_payment_failed_after_the_order_finished_does_nothing(status):
    order = make_order(status=status)

    deliver("on_payment_failed", "payment.failed", failed(order))

    assert status_of(order) == (status, "")
    assert OutboxEvent.objects.count() == 0


# inventory.reservation_expired


@pytest.mark.parametrize("previous", ["pending", "awaiting_payment"])
def test_reservation_expired_cancels_an_unpaid_order_for_payment_timeout(previous):
    order = make_order(status=previous)

    deliver("on_inventory_reservation_expired", "inventory.reservation_expired", expired(order))

    assert status_of(order) == ("cancelled", "payment_timeout")
    [cancelled] = outbox("order.cancelled")
    assert (cancelled["reason"], cancelled["previous_status"]) == ("payment_timeout", previous)


def test_a_payment_arriving_after_the_reservation_expired_is_refused():
    order = make_order(status="awaiting_payment")

    deliver("on_inventory_reservation_expired", "inventory.reservation_expired", expired(order))
    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))

    assert status_of(order) == ("cancelled", "payment_timeout")
    assert [event.event_type for event in OutboxEvent.objects.all()] == ["order.cancelled"]


def test_reservation_expired_after_the_payment_won_the_race_does_nothing():
    order = make_order(status="awaiting_payment")

    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))
    deliver("on_inventory_reservation_expired", "inventory.reservation_expired", expired(order))

    assert status_of(order) == ("confirmed", "")
    assert [event.event_type for event in OutboxEvent.objects.all()] == ["order.confirmed"]


# payment.refunded


def test_payment_refunded_records_the_refund_once_and_keeps_the_status():
    order = make_order(status="cancelled")

    deliver("on_payment_refunded", "payment.refunded", refunded(order))
    order.refresh_from_db()
    first_refund = order.refunded_at
    deliver("on_payment_refunded", "payment.refunded", refunded(order))

    order.refresh_from_db()
    assert first_refund is not None
    assert order.refunded_at == first_refund
    assert order.status == "cancelled"
    assert OutboxEvent.objects.count() == 0


# The whole happy path, then the owner's cancel: one history row per step


def test_history_records_every_transition_in_order():
    order = make_order()
    deliver("on_inventory_reserved", "inventory.reserved", reserved(order))
    deliver("on_payment_succeeded", "payment.succeeded", succeeded(order))
    services.order_cancel(order_id=order.id)

    assert history_of(order) == [
        ("pending", ""),
        ("awaiting_payment", ""),
        ("confirmed", ""),
        ("cancelled", "customer_cancelled"),
    ]
    assert [event.event_type for event in OutboxEvent.objects.all()] == ["order.confirmed", "order.cancelled"]
    assert outbox("order.cancelled")[0]["previous_status"] == "confirmed"


# Any event, delivered three times, has the effect of one delivery

THRICE = [
    ("on_inventory_reserved", "inventory.reserved", "pending", reserved),
    ("on_inventory_reservation_failed", "inventory.reservation_failed", "pending", reservation_failed),
    ("on_payment_succeeded", "payment.succeeded", "awaiting_payment", succeeded),
    ("on_payment_failed", "payment.failed", "awaiting_payment", failed),
    ("on_inventory_reservation_expired", "inventory.reservation_expired", "awaiting_payment", expired),
    ("on_payment_refunded", "payment.refunded", "cancelled", refunded),
]


@pytest.mark.parametrize(
    ("handler", "event_type", "status", "payload"), THRICE, ids=[row[1] for row in THRICE]
)
def test_an_event_delivered_three_times_takes_effect_once(handler, event_type, status, payload):
    order = make_order(status=status)
    event = new_event(event_type, payload(order))

    def snapshot():
        order.refresh_from_db()
        return (order.status, order.status_reason, order.refunded_at, history_of(order), outbox())

    before = snapshot()
    first = deliver(handler, event_type, {}, event=event)[1]
    after_one = snapshot()
    repeats = [deliver(handler, event_type, {}, event=event)[1] for _ in range(2)]

    assert (first, repeats) == (True, [False, False])
    assert after_one != before
    assert snapshot() == after_one


# The product read model


def product_event(event_type: str, product_id: str, *, occurred_at: datetime, **data):
    if event_type == "product.deleted":
        payload = event_data(event_type, product_id=product_id, sku="PEN-1")
    else:
        fields = {"product_id": product_id, "sku": "PEN-1", "name": "Pen", "price": "1.50"}
        payload = event_data(event_type, **(fields | {"category": "stationery"} | data))
    return dataclasses.replace(new_event(event_type, payload), occurred_at=occurred_at.isoformat())


def deliver_product(event_type: str, product_id: str, *, minutes: int, **data):
    # Past times: the inbox keeps events by their time, and has partitions for the past and the next days.
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    handler = "on_product_deleted" if event_type == "product.deleted" else "on_product_changed"
    return deliver(
        handler, event_type, {}, event=product_event(event_type, product_id, occurred_at=at, **data)
    )


def test_product_created_and_updated_keep_the_read_model():
    product_id = str(uuid.uuid4())

    deliver_product("product.created", product_id, minutes=0, initial_stock=10)
    deliver_product("product.updated", product_id, minutes=1, name="Fine pen", price="2.00")

    product = ProductReadModel.objects.get()
    assert (str(product.product_id), product.sku, product.name, product.price, product.is_active) == (
        product_id,
        "PEN-1",
        "Fine pen",
        Decimal("2.00"),
        True,
    )
    assert product.updated_at == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_an_older_product_update_arriving_late_is_ignored():
    product_id = str(uuid.uuid4())
    deliver_product("product.updated", product_id, minutes=5, price="3.00")

    deliver_product("product.updated", product_id, minutes=1, price="2.00")

    assert ProductReadModel.objects.get().price == Decimal("3.00")


def test_product_deleted_deactivates_the_product():
    product_id = str(uuid.uuid4())
    deliver_product("product.created", product_id, minutes=0)

    deliver_product("product.deleted", product_id, minutes=1)

    product = ProductReadModel.objects.get()
    assert (product.is_active, product.name) == (False, "Pen")


def test_a_deleted_product_is_not_revived_by_its_late_creation():
    product_id = str(uuid.uuid4())

    deliver_product("product.deleted", product_id, minutes=5)
    deliver_product("product.created", product_id, minutes=0)

    product = ProductReadModel.objects.get()
    assert product.is_active is False

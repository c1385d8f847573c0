"""inventory's event handlers, run the way the worker runs them: through the inbox, each exactly once."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from inventory import handlers, tasks
from inventory.models import Reservation, ReservationStatus, Stock
from inventory.tests.helpers import counts, event_data, line, order_created_data, published
from shared.messaging import inbox, subscriptions
from shared.messaging.events import UnsupportedEventVersion, new_event
from shared.messaging.models import InboxMessage, OutboxEvent

pytestmark = pytest.mark.django_db

HANDLERS = {
    "product.created": handlers.on_product_created,
    "product.deleted": handlers.on_product_deleted,
    "order.created": handlers.on_order_created,
    "order.confirmed": handlers.on_order_confirmed,
    "order.cancelled": handlers.on_order_cancelled,
    "payment.failed": handlers.on_payment_failed,
}


def deliver(event_type: str, data: dict, *, event=None) -> bool:
    """Handle one event as the worker does; pass `event` to redeliver the very same one."""
    event = event or new_event(event_type, data)
    handler = HANDLERS[event_type]
    return inbox.handle_once(f"{handler.__module__}.{handler.__name__}", handler, event)


def product_created(product_id=None, initial_stock=10, **overrides) -> dict:
    """`product.created` data built from its contract (shared.contracts)."""
    fields = {"product_id": str(product_id or uuid.uuid4()), "sku": "SKU-42", "initial_stock": initial_stock}
    return event_data("product.created", **(fields | overrides))


def order_event(event_type: str, order_id, **overrides) -> dict:
    """order.confirmed / order.cancelled / payment.failed data, built from its contract, for this order."""
    return event_data(event_type, order_id=str(order_id), **overrides)


@pytest.fixture
def stock(db):
    data = product_created(initial_stock=10)
    deliver("product.created", data)
    return Stock.objects.get(product_id=data["product_id"])


def reserved_order(stock, quantity=4):
    data = order_created_data(None, [line(stock.product_id, quantity)])
    deliver("order.created", data)
    return data["order_id"]


# Subscriptions


def test_the_settings_subscribe_every_handler_and_they_import():
    assert subscriptions.subscribed_types() == sorted(HANDLERS)
    assert subscriptions.check_handlers_importable() == []
    for event_type, handler in HANDLERS.items():
        assert subscriptions.handlers_for(event_type)[0][1] is handler


def test_the_expiry_sweep_is_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["reservations-expire"]
    assert entry == {"task": "inventory.reservations_expire", "schedule": settings.RESERVATION_SWEEP_SECONDS}
    assert tasks.reservations_expire.name == "inventory.reservations_expire"


def test_the_worker_dispatches_an_envelope_to_the_subscribed_handler():
    data = product_created(initial_stock=3)

    inbox.deliver(new_event("product.created", data).as_envelope())

    assert Stock.objects.get(product_id=data["product_id"]).on_hand == 3


# product.created / product.deleted


def test_product_created_creates_the_stock_row_once():
    data = product_created(initial_stock=8)
    event = new_event("product.created", data)

    assert deliver("product.created", data, event=event) is True
    assert deliver("product.created", data, event=event) is False

    stock = Stock.objects.get()
    assert (str(stock.product_id), stock.sku, stock.on_hand) == (data["product_id"], "SKU-42", 8)
    assert InboxMessage.objects.count() == 1


def test_a_second_product_created_for_the_same_product_keeps_the_counts(stock):
    reserved_order(stock, 4)

    deliver("product.created", product_created(stock.product_id, initial_stock=50))

    assert counts(stock) == (6, 4, 0)


def test_product_created_without_initial_stock_starts_at_zero():
    data = product_created()
    del data["initial_stock"]

    deliver("product.created", data)

    assert Stock.objects.get().on_hand == 0


def test_a_malformed_product_created_leaves_nothing_not_even_its_inbox_row():
    with pytest.raises(ValueError):
        deliver("product.created", product_created(initial_stock=-3, valid=False))

    assert Stock.objects.count() == 0
    assert InboxMessage.objects.count() == 0  # so the retry (and later the dead-letter queue) sees it


def test_product_deleted_flags_the_stock_and_keeps_it(stock):
    data = {"product_id": str(stock.product_id), "sku": "SKU-42"}
    event = new_event("product.deleted", data)

    deliver("product.deleted", data, event=event)
    deliver("product.deleted", data, event=event)

    stock.refresh_from_db()
    assert stock.product_deleted_at is not None
    assert counts(stock) == (10, 0, 0)


# order.created


def test_order_created_reserves_and_passes_the_order_on(stock):
    data = order_created_data(None, [line(stock.product_id, 4)], total="50.00", payment_token="tok_visa")

    deliver("order.created", data)

    reservation = Reservation.objects.get()
    assert counts(stock) == (6, 4, 0)
    [event] = OutboxEvent.objects.all()
    assert event.event_type == "inventory.reserved"
    assert event.envelope["source"] == "inventory"
    assert event.envelope["data"] == {
        "order_id": data["order_id"],
        "reservation_id": str(reservation.id),
        "expires_at": reservation.expires_at.isoformat(),
        "user_id": data["user_id"],
        "customer_email": data["customer_email"],
        "total": "50.00",
        "currency": "USD",
        "payment_token": "tok_visa",
        "lines": [line(stock.product_id, 4)],
    }


def test_order_created_in_versions_1_and_2_reserves_alike_and_passes_the_same_facts_on(stock):
    v1 = order_created_data(None, [line(stock.product_id, 4)], total="50.00")
    v2 = order_created_data(
        None, [line(stock.product_id, 3)], version=2, total={"amount": "37.50", "currency": "EUR"}
    )

    deliver("order.created", v1)
    deliver("order.created", v2, event=new_event("order.created", v2, version=2))

    assert counts(stock) == (3, 7, 0)
    assert [
        (data["order_id"], data["total"], data["currency"], data["lines"])
        for data in published("inventory.reserved")
    ] == [
        (v1["order_id"], "50.00", "USD", [line(stock.product_id, 4)]),
        (v2["order_id"], "37.50", "EUR", [line(stock.product_id, 3)]),
    ]


def test_the_worker_takes_order_created_in_version_2_and_refuses_a_version_3(stock):
    v2 = order_created_data(None, [line(stock.product_id, 2)], version=2)

    inbox.deliver(new_event("order.created", v2, version=2).as_envelope())
    with pytest.raises(UnsupportedEventVersion):
        inbox.deliver(
            new_event(
                "order.created", order_created_data(None, [line(stock.product_id, 1)]), version=3
            ).as_envelope()
        )

    assert Reservation.objects.get().order_id == uuid.UUID(v2["order_id"])
    assert counts(stock) == (8, 2, 0)


def test_order_created_delivered_twice_reserves_once(stock):
    data = order_created_data(None, [line(stock.product_id, 4)])
    event = new_event("order.created", data)

    assert deliver("order.created", data, event=event) is True
    assert deliver("order.created", data, event=event) is False

    assert counts(stock) == (6, 4, 0)
    assert OutboxEvent.objects.count() == 1


def test_order_created_republished_under_a_new_event_id_reserves_once(stock):
    data = order_created_data(None, [line(stock.product_id, 4)])

    deliver("order.created", data)
    deliver("order.created", data)

    assert counts(stock) == (6, 4, 0)
    assert Reservation.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


def test_order_created_for_too_much_announces_out_of_stock(stock):
    data = order_created_data(None, [line(stock.product_id, 11)])

    deliver("order.created", data)

    assert published() == [
        {"order_id": data["order_id"], "reason": "out_of_stock", "product_ids": [str(stock.product_id)]}
    ]
    assert counts(stock) == (10, 0, 0)


def test_order_created_for_an_unknown_product_announces_unknown_product(stock):
    unknown = str(uuid.uuid4())
    data = order_created_data(None, [line(stock.product_id, 1), line(unknown, 1)])

    deliver("order.created", data)

    assert published("inventory.reservation_failed")[0]["reason"] == "unknown_product"
    assert published("inventory.reservation_failed")[0]["product_ids"] == [unknown]
    assert counts(stock) == (10, 0, 0)


def test_order_created_without_lines_is_refused_and_rolled_back():
    data = order_created_data(None, [], valid=False)

    with pytest.raises(ValueError):
        deliver("order.created", data)

    assert Reservation.objects.count() == 0
    assert InboxMessage.objects.count() == 0


# Settlement


def test_order_confirmed_commits_once(stock):
    order_id = reserved_order(stock)
    event = new_event("order.confirmed", order_event("order.confirmed", order_id, total="50.00"))

    deliver("order.confirmed", event.data, event=event)
    deliver("order.confirmed", event.data, event=event)
    deliver("order.confirmed", event.data)  # a copy with a new event id

    assert counts(stock) == (6, 0, 4)
    assert Reservation.objects.get().status == ReservationStatus.COMMITTED


def test_payment_failed_releases_once(stock):
    order_id = reserved_order(stock)
    data = order_event("payment.failed", order_id, reason="payment_declined", message="declined")
    event = new_event("payment.failed", data)

    deliver("payment.failed", data, event=event)
    deliver("payment.failed", data, event=event)
    reserved_order(stock, 3)  # another order takes units meanwhile
    deliver("payment.failed", data)

    assert counts(stock) == (7, 3, 0)
    assert Reservation.objects.get(order_id=order_id).status == ReservationStatus.RELEASED


def test_payment_failed_after_confirmation_does_not_unsell(stock):
    order_id = reserved_order(stock)
    deliver("order.confirmed", order_event("order.confirmed", order_id))

    deliver("payment.failed", order_event("payment.failed", order_id, reason="payment_declined"))

    assert counts(stock) == (6, 0, 4)


def test_order_confirmed_after_payment_failed_commits_nothing(stock):
    order_id = reserved_order(stock)
    deliver("payment.failed", order_event("payment.failed", order_id, reason="payment_declined"))

    deliver("order.confirmed", order_event("order.confirmed", order_id))

    assert counts(stock) == (10, 0, 0)
    assert Reservation.objects.get().status == ReservationStatus.RELEASED


def test_order_cancelled_releases_a_held_reservation(stock):
    order_id = reserved_order(stock)

    deliver(
        "order.cancelled",
        order_event("order.cancelled", order_id, reason="payment_timeout", previous_status="pending"),
    )

    assert counts(stock) == (10, 0, 0)


def test_order_cancelled_after_confirmation_returns_the_units_once(stock):
    order_id = reserved_order(stock)
    deliver("order.confirmed", order_event("order.confirmed", order_id))
    data = order_event("order.cancelled", order_id, reason="customer_cancelled", previous_status="confirmed")

    deliver("order.cancelled", data)
    deliver("order.cancelled", data)

    assert counts(stock) == (10, 0, 0)
    assert Reservation.objects.get().status == ReservationStatus.RETURNED


def test_order_cancelled_before_order_created_leaves_a_tombstone(stock):
    data = order_created_data(None, [line(stock.product_id, 4)])
    deliver("order.cancelled", order_event("order.cancelled", data["order_id"], reason="customer_cancelled"))

    deliver("order.created", data)

    assert Reservation.objects.get().status == ReservationStatus.TOMBSTONE
    assert counts(stock) == (10, 0, 0)
    assert OutboxEvent.objects.count() == 0


def test_the_expiry_task_announces_once_and_the_units_wait_for_orders(stock):
    order_id = reserved_order(stock)
    Reservation.objects.update(expires_at=Reservation.objects.get().created_at)

    assert tasks.reservations_expire() == 1
    assert tasks.reservations_expire() == 0

    assert published("inventory.reservation_expired") == [
        {"order_id": order_id, "reservation_id": str(Reservation.objects.get().id)}
    ]
    assert counts(stock) == (6, 4, 0)
    deliver("order.cancelled", order_event("order.cancelled", order_id, reason="payment_timeout"))
    assert counts(stock) == (10, 0, 0)

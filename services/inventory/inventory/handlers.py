"""Event handlers (settings.EVENT_SUBSCRIPTIONS). Each runs inside the inbox transaction of its event,
so its effect and the record that the event was handled commit together. Thin: one service call."""

from __future__ import annotations

from inventory import services
from shared.messaging.events import Event


def on_product_created(event: Event) -> None:
    services.stock_create(
        product_id=event.data.get("product_id"),
        initial_stock=event.data.get("initial_stock", 0),
        sku=event.data.get("sku") or "",
    )


def on_product_deleted(event: Event) -> None:
    services.stock_mark_product_deleted(product_id=event.data.get("product_id"))


def on_order_created(event: Event) -> None:
    services.reservation_create(
        order_id=event.data.get("order_id"), lines=event.data.get("lines"), order_facts=event.data
    )


def on_order_confirmed(event: Event) -> None:
    services.reservation_commit(order_id=event.data.get("order_id"))


def on_payment_failed(event: Event) -> None:
    services.reservation_release(order_id=event.data.get("order_id"))


def on_order_cancelled(event: Event) -> None:
    services.reservation_cancel(order_id=event.data.get("order_id"))

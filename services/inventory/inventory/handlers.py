"""Event handlers (settings.EVENT_SUBSCRIPTIONS). Each runs inside the inbox transaction of its event,
so its effect and the record that the event was handled commit together. Thin: one service call."""

from __future__ import annotations

from inventory import services
from shared.contracts import upcast
from shared.messaging.events import Event
from shared.messaging.subscriptions import accepts_versions


def on_product_created(event: Event) -> None:
    services.stock_create(
        product_id=event.data.get("product_id"),
        initial_stock=event.data.get("initial_stock", 0),
        sku=event.data.get("sku") or "",
    )


def on_product_deleted(event: Event) -> None:
    services.stock_mark_product_deleted(product_id=event.data.get("product_id"))


@accepts_versions(1, 2)
def on_order_created(event: Event) -> None:
    data = upcast(event, to_version=2).data  # one shape: money as {amount, currency}
    services.reservation_create(
        order_id=data["order_id"], lines=data["lines"], order_facts=_facts_passed_on(data)
    )


def _facts_passed_on(order_created: dict) -> dict:
    """What inventory.reserved (version 1: money as a string beside its currency) tells payments."""
    total = order_created["total"]
    return {**order_created, "total": total["amount"], "currency": total["currency"]}


def on_order_confirmed(event: Event) -> None:
    services.reservation_commit(order_id=event.data.get("order_id"))


def on_payment_failed(event: Event) -> None:
    services.reservation_release(order_id=event.data.get("order_id"))


def on_order_cancelled(event: Event) -> None:
    services.reservation_cancel(order_id=event.data.get("order_id"))

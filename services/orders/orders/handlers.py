"""Event handlers: thin. Each runs inside shared's inbox transaction, so its effect happens once."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from orders import services
from shared.messaging.events import Event

logger = logging.getLogger(__name__)


def _order_id(event: Event) -> uuid.UUID:
    return uuid.UUID(str(event.data["order_id"]))


def _occurred_at(event: Event) -> datetime:
    """When catalog changed the product: orders the read model's versions of it."""
    try:
        occurred_at = datetime.fromisoformat(event.occurred_at)
    except (TypeError, ValueError):
        logger.warning("event without a usable occurred_at", extra={"event_id": event.id})
        return timezone.now()
    return occurred_at if timezone.is_aware(occurred_at) else occurred_at.replace(tzinfo=UTC)


def on_product_changed(event: Event) -> None:
    """product.created / product.updated -> the read model's row."""
    data = event.data
    services.product_read_model_apply(
        product_id=uuid.UUID(str(data["product_id"])),
        sku=str(data.get("sku", "")),
        name=str(data["name"]),
        price=Decimal(str(data["price"])),
        currency=str(data.get("currency") or "USD"),
        is_active=bool(data.get("is_active", True)),
        occurred_at=_occurred_at(event),
    )


def on_product_deleted(event: Event) -> None:
    services.product_read_model_deactivate(
        product_id=uuid.UUID(str(event.data["product_id"])),
        sku=str(event.data.get("sku", "")),
        occurred_at=_occurred_at(event),
    )


def on_inventory_reserved(event: Event) -> None:
    services.order_mark_awaiting_payment(order_id=_order_id(event))


def on_inventory_reservation_failed(event: Event) -> None:
    services.order_reject(order_id=_order_id(event), reason=str(event.data.get("reason", "")))


def on_inventory_reservation_expired(event: Event) -> None:
    services.order_cancel_unpaid(order_id=_order_id(event), reason="payment_timeout")


def on_payment_succeeded(event: Event) -> None:
    services.order_confirm(order_id=_order_id(event))


def on_payment_failed(event: Event) -> None:
    services.order_cancel_unpaid(order_id=_order_id(event), reason=str(event.data.get("reason", "")))


def on_payment_refunded(event: Event) -> None:
    services.order_mark_refunded(order_id=_order_id(event))

"""Event handlers: thin. Each runs inside shared's inbox transaction (one effect per event)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from payments import services
from shared.messaging.events import Event

logger = logging.getLogger(__name__)


def on_inventory_reserved(event: Event) -> None:
    data = event.data
    services.payment_create_for_reservation(
        order_id=data["order_id"],
        reservation_id=str(data.get("reservation_id") or ""),
        user_id=data["user_id"],
        customer_email=data.get("customer_email") or "",
        amount=Decimal(str(data["total"])),
        currency=data.get("currency") or "USD",
        payment_token=data.get("payment_token") or "",
        expires_at=_parse_time(data.get("expires_at")),
    )


def on_inventory_reservation_expired(event: Event) -> None:
    services.payment_expire_reservation(order_id=event.data["order_id"])


def on_order_cancelled(event: Event) -> None:
    data = event.data
    services.payment_cancel_for_order(
        order_id=data["order_id"],
        user_id=data["user_id"],
        customer_email=data.get("customer_email") or "",
        currency=data.get("currency") or "USD",
    )


def on_order_confirmed(event: Event) -> None:
    # No money moves: the payment was captured before orders could confirm. Logged for the trail.
    logger.info("order confirmed", extra={"order_id": event.data.get("order_id"), "event_id": event.id})


def on_order_rejected(event: Event) -> None:
    # No money moves: a rejected order never reserved stock, so no payment was ever started.
    logger.info("order rejected", extra={"order_id": event.data.get("order_id"), "event_id": event.id})


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"expires_at is not an ISO 8601 time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

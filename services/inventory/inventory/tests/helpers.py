"""Helpers for inventory's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid

from inventory.models import Stock
from shared.testing import assert_error, bearer_client, outbox_envelopes  # noqa: F401 (the tests import them from here)


def line(product_id, quantity: int) -> dict:
    return {"product_id": str(product_id), "quantity": quantity}


def order_created_data(order_id=None, lines=(), **overrides) -> dict:
    """`order.created` data as docs/saga.md defines it."""
    data = {
        "order_id": str(order_id or uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "customer_email": "carla@example.com",
        "lines": [{**item, "name": "Widget", "unit_price": "12.50"} for item in lines],
        "total": "25.00",
        "currency": "USD",
        "payment_token": "tok_visa",
    }
    data.update(overrides)
    return data


def published(event_type: str | None = None) -> list[dict]:
    """Data of the events written to the outbox, oldest first (optionally of one type)."""
    return [envelope["data"] for envelope in outbox_envelopes(event_type)]


def counts(stock: Stock) -> tuple[int, int, int]:
    """(on_hand, reserved, sold), fresh from the database."""
    stock.refresh_from_db()
    return stock.on_hand, stock.reserved, stock.sold

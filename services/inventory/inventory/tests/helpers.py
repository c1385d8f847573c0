"""Helpers for inventory's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid

from inventory.models import Stock
from shared.testing import assert_error, bearer_client, event_data, outbox_envelopes  # noqa: F401 (the tests import them from here)


def line(product_id, quantity: int) -> dict:
    return {"product_id": str(product_id), "quantity": quantity}


def order_created_data(order_id=None, lines=(), *, version: int = 1, **overrides) -> dict:
    """`order.created` data built from its contract (shared.contracts), with these lines; `version` 2 has
    money as `{amount, currency}`. Checked against the schema unless `valid=False` is passed."""
    price, total = ("12.50", "25.00") if version == 1 else (_money("12.50"), _money("25.00"))
    fields = {
        "order_id": str(order_id or uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "customer_email": "carla@example.com",
        "lines": [{**item, "name": "Widget", "unit_price": price} for item in lines],
        "total": total,
        "payment_token": "tok_visa",
    }
    return event_data("order.created", version, **(fields | overrides))


def order_facts() -> dict:
    """An order.created's data, from its contract: what `reservation_create` passes on to payments."""
    return event_data("order.created", order_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()))


def _money(amount: str, currency: str = "USD") -> dict:
    return {"amount": amount, "currency": currency}


def published(event_type: str | None = None) -> list[dict]:
    """Data of the events written to the outbox, oldest first (optionally of one type)."""
    return [envelope["data"] for envelope in outbox_envelopes(event_type)]


def counts(stock: Stock) -> tuple[int, int, int]:
    """(on_hand, reserved, sold), fresh from the database."""
    stock.refresh_from_db()
    return stock.on_hand, stock.reserved, stock.sold

"""The catalogue of domain events: one JSON Schema (draft 2020-12) per event type and version.

Each `EventContract` names its producer and consumers (checked against every service's
EVENT_SUBSCRIPTIONS by shared/tests/test_contracts.py), describes the fact, declares the schema of the
envelope's `data` and carries one realistic example (also what `shared.testing.event_data` builds
from). Schemas are derived from what the publishers send (services/*/*/services.py): `required` lists
what consumers read; other properties are documented but optional, and unknown properties are allowed,
so adding a field is not a new version (docs/contracts.md, "Events").

A breaking change is a new contract of the same type with the next version and an `upcaster` from the
previous version's data (shared.contracts.upcasting).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key for its compiled validator
class EventContract:
    type: str
    version: int
    producer: str
    consumers: tuple[str, ...]
    description: str
    schema: dict
    example: dict
    # Turns the previous version's data into this version's shape (None for version 1).
    upcaster: Callable[[dict], dict] | None = field(default=None)


# --- building blocks -------------------------------------------------------------------------------------

UUID = {"type": "string", "format": "uuid"}
TIMESTAMP = {"type": "string", "format": "date-time"}
MONEY = {
    "type": "string",
    "pattern": r"^\d+\.\d{2}$",
    "description": "An amount as a decimal string with two decimals (never a float).",
}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code."}
MONEY_OBJECT = {
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {"amount": MONEY, "currency": CURRENCY},
}
TEXT = {"type": "string"}
QUANTITY = {"type": "integer", "minimum": 1}

ORDER_LINE = {
    "type": "object",
    "required": ["product_id", "quantity"],
    "properties": {"product_id": UUID, "name": TEXT, "unit_price": MONEY, "quantity": QUANTITY},
}
ORDER_LINE_V2 = {
    **ORDER_LINE,
    "properties": {**ORDER_LINE["properties"], "unit_price": MONEY_OBJECT},
}
RESERVED_LINE = {
    "type": "object",
    "required": ["product_id", "quantity"],
    "properties": {"product_id": UUID, "quantity": QUANTITY},
}


def data_schema(title: str, properties: dict, required: list[str]) -> dict:
    """An object schema; unknown properties are allowed (a consumer ignores what it does not read)."""
    return {
        "$schema": DIALECT,
        "title": title,
        "type": "object",
        "required": required,
        "properties": properties,
    }


def _lines(line_schema: dict) -> dict:
    return {"type": "array", "items": line_schema, "minItems": 1}


# --- examples (ids fixed so the generated document is stable) ----------------------------------------------

USER_ID = "2f1e6c3a-8d47-4b1e-9a55-0c6b7d8e9f10"
ORDER_ID = "5b3c9d2e-1f4a-4c6b-8e7d-9a0b1c2d3e4f"
PRODUCT_ID = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
OTHER_PRODUCT_ID = "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"
RESERVATION_ID = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
PAYMENT_ID = "3a4b5c6d-7e8f-4901-a2b3-c4d5e6f7a8b9"
EMAIL = "ada@example.com"

EXAMPLE_LINES = [
    {"product_id": PRODUCT_ID, "name": "Blue mug", "unit_price": "12.50", "quantity": 2},
    {"product_id": OTHER_PRODUCT_ID, "name": "Tea towel", "unit_price": "5.00", "quantity": 1},
]
ORDER_PARTY = {"order_id": ORDER_ID, "user_id": USER_ID, "customer_email": EMAIL}
ORDER_PARTY_PROPERTIES = {"order_id": UUID, "user_id": UUID, "customer_email": TEXT}


# --- order.created: version 2 carries money as {amount, currency} -------------------------------------


def order_created_v1_to_v2(data: dict) -> dict:
    """v1 (`total` and `unit_price` as strings beside one `currency`) -> v2 (money objects)."""
    upcast = {key: value for key, value in data.items() if key != "currency"}
    currency = data.get("currency") or "USD"
    upcast["total"] = {"amount": data["total"], "currency": currency}
    upcast["lines"] = [_line_v2(line, currency) for line in data["lines"]]
    return upcast


def _line_v2(line: dict, currency: str) -> dict:
    if "unit_price" not in line:
        return dict(line)
    return {**line, "unit_price": {"amount": line["unit_price"], "currency": currency}}


def money_amount(value: dict) -> Decimal:
    """The Decimal of a v2 money object."""
    return Decimal(value["amount"])


# --- the catalogue ------------------------------------------------------------------------------------

PRODUCT_PROPERTIES = {
    "product_id": UUID,
    "sku": TEXT,
    "name": TEXT,
    "price": MONEY,
    "currency": CURRENCY,
    "is_active": {"type": "boolean"},
    "category": {**TEXT, "description": "The category's slug."},
}
PRODUCT_EXAMPLE = {
    "product_id": PRODUCT_ID,
    "sku": "MUG-BLUE",
    "name": "Blue mug",
    "price": "12.50",
    "currency": "USD",
    "is_active": True,
    "category": "kitchen",
}
ORDER_MONEY_PROPERTIES = {
    **ORDER_PARTY_PROPERTIES,
    "total": MONEY,
    "currency": CURRENCY,
    "lines": _lines(ORDER_LINE),
}
ORDER_MONEY_EXAMPLE = {**ORDER_PARTY, "total": "30.00", "currency": "USD", "lines": EXAMPLE_LINES}
ORDER_MONEY_REQUIRED = ["order_id", "user_id", "customer_email", "total", "currency", "lines"]

CATALOGUE: tuple[EventContract, ...] = (
    EventContract(
        type="user.registered",
        version=1,
        producer="identity",
        consumers=("notifications",),
        description="An account was created (self-registration or by staff); the welcome e-mail follows.",
        schema=data_schema(
            "user.registered v1",
            {
                "user_id": UUID,
                "email": TEXT,
                "full_name": TEXT,
                "roles": {"type": "array", "items": TEXT},
            },
            ["user_id", "email"],
        ),
        example={"user_id": USER_ID, "email": EMAIL, "full_name": "Ada Lovelace", "roles": ["customer"]},
    ),
    EventContract(
        type="product.created",
        version=1,
        producer="catalog",
        consumers=("inventory", "orders"),
        description="A product was created; `initial_stock` is inventory's opening stock for it.",
        schema=data_schema(
            "product.created v1",
            {**PRODUCT_PROPERTIES, "initial_stock": {"type": "integer", "minimum": 0}},
            ["product_id", "name", "price"],
        ),
        example={**PRODUCT_EXAMPLE, "initial_stock": 25},
    ),
    EventContract(
        type="product.updated",
        version=1,
        producer="catalog",
        consumers=("orders",),
        description="A product's fields changed (the whole product is sent, not the changes).",
        schema=data_schema("product.updated v1", PRODUCT_PROPERTIES, ["product_id", "name", "price"]),
        example={**PRODUCT_EXAMPLE, "price": "13.00"},
    ),
    EventContract(
        type="product.deleted",
        version=1,
        producer="catalog",
        consumers=("inventory", "orders"),
        description="A product was soft-deleted: it is no longer sold; orders keep referring to it.",
        schema=data_schema("product.deleted v1", {"product_id": UUID, "sku": TEXT}, ["product_id"]),
        example={"product_id": PRODUCT_ID, "sku": "MUG-BLUE"},
    ),
    EventContract(
        type="order.created",
        version=1,
        producer="orders",
        consumers=("inventory",),
        description=(
            "An order was placed at catalog's prices; inventory reserves its lines and passes the "
            "order's facts (user, total, payment token) on to payments in inventory.reserved."
        ),
        schema=data_schema(
            "order.created v1",
            {**ORDER_MONEY_PROPERTIES, "payment_token": TEXT},
            ["order_id", "user_id", "customer_email", "lines", "total", "currency", "payment_token"],
        ),
        example={**ORDER_MONEY_EXAMPLE, "payment_token": "tok_visa"},
    ),
    EventContract(
        type="order.created",
        version=2,
        producer="orders",
        consumers=("inventory",),
        description=(
            "order.created with money as objects: `total` and each line's `unit_price` are "
            "`{amount, currency}`; there is no top-level `currency`."
        ),
        schema=data_schema(
            "order.created v2",
            {
                **ORDER_PARTY_PROPERTIES,
                "total": MONEY_OBJECT,
                "lines": _lines(ORDER_LINE_V2),
                "payment_token": TEXT,
            },
            ["order_id", "user_id", "customer_email", "lines", "total", "payment_token"],
        ),
        example=order_created_v1_to_v2({**ORDER_MONEY_EXAMPLE, "payment_token": "tok_visa"}),
        upcaster=order_created_v1_to_v2,
    ),
    EventContract(
        type="inventory.reserved",
        version=1,
        producer="inventory",
        consumers=("orders", "payments"),
        description=(
            "Every line of an order is held until `expires_at`; carries what payments needs to charge "
            "(user, total, currency, payment token), copied from order.created."
        ),
        schema=data_schema(
            "inventory.reserved v1",
            {
                "order_id": UUID,
                "reservation_id": UUID,
                "expires_at": TIMESTAMP,
                "user_id": UUID,
                "customer_email": TEXT,
                "total": MONEY,
                "currency": CURRENCY,
                "payment_token": TEXT,
                "lines": _lines(RESERVED_LINE),
            },
            ["order_id", "reservation_id", "expires_at", "user_id", "total", "currency", "payment_token"],
        ),
        example={
            **ORDER_PARTY,
            "reservation_id": RESERVATION_ID,
            "expires_at": "2026-12-04T23:15:00+00:00",
            "total": "30.00",
            "currency": "USD",
            "payment_token": "tok_visa",
            "lines": [
                {"product_id": PRODUCT_ID, "quantity": 2},
                {"product_id": OTHER_PRODUCT_ID, "quantity": 1},
            ],
        },
    ),
    EventContract(
        type="inventory.reservation_failed",
        version=1,
        producer="inventory",
        consumers=("orders",),
        description="Nothing of an order could be reserved: a product is unknown or short of stock.",
        schema=data_schema(
            "inventory.reservation_failed v1",
            {
                "order_id": UUID,
                "reason": {**TEXT, "description": "out_of_stock or unknown_product."},
                "product_ids": {"type": "array", "items": UUID},
            },
            ["order_id", "reason"],
        ),
        example={"order_id": ORDER_ID, "reason": "out_of_stock", "product_ids": [PRODUCT_ID]},
    ),
    EventContract(
        type="inventory.reservation_expired",
        version=1,
        producer="inventory",
        consumers=("orders", "payments"),
        description="A held reservation passed its deadline unpaid; orders cancels (payment_timeout).",
        schema=data_schema(
            "inventory.reservation_expired v1",
            {"order_id": UUID, "reservation_id": UUID},
            ["order_id"],
        ),
        example={"order_id": ORDER_ID, "reservation_id": RESERVATION_ID},
    ),
    EventContract(
        type="payment.succeeded",
        version=1,
        producer="payments",
        consumers=("orders",),
        description="The order's money was captured at the provider.",
        schema=data_schema(
            "payment.succeeded v1",
            {"order_id": UUID, "payment_id": UUID, "amount": MONEY, "currency": CURRENCY},
            ["order_id", "payment_id", "amount", "currency"],
        ),
        example={"order_id": ORDER_ID, "payment_id": PAYMENT_ID, "amount": "30.00", "currency": "USD"},
    ),
    EventContract(
        type="payment.failed",
        version=1,
        producer="payments",
        consumers=("inventory", "orders"),
        description="The payment was declined, the provider stayed unavailable, or the reservation expired.",
        schema=data_schema(
            "payment.failed v1",
            {
                "order_id": UUID,
                "payment_id": UUID,
                "reason": {
                    **TEXT,
                    "description": "payment_declined, payment_unavailable or payment_timeout.",
                },
                "message": TEXT,
            },
            ["order_id", "reason"],
        ),
        example={
            "order_id": ORDER_ID,
            "payment_id": PAYMENT_ID,
            "reason": "payment_declined",
            "message": "Your card was declined.",
        },
    ),
    EventContract(
        type="payment.refunded",
        version=1,
        producer="payments",
        consumers=("notifications", "orders"),
        description="A captured payment was refunded (a confirmed order cancelled, or a late capture).",
        schema=data_schema(
            "payment.refunded v1",
            {
                **ORDER_PARTY_PROPERTIES,
                "payment_id": UUID,
                "amount": MONEY,
                "currency": CURRENCY,
            },
            ["order_id", "payment_id", "amount", "currency"],
        ),
        example={**ORDER_PARTY, "payment_id": PAYMENT_ID, "amount": "30.00", "currency": "USD"},
    ),
    EventContract(
        type="order.confirmed",
        version=1,
        producer="orders",
        consumers=("inventory", "notifications", "payments"),
        description="The order is paid: inventory commits its stock, notifications sends the confirmation.",
        schema=data_schema("order.confirmed v1", ORDER_MONEY_PROPERTIES, ORDER_MONEY_REQUIRED),
        example=ORDER_MONEY_EXAMPLE,
    ),
    EventContract(
        type="order.cancelled",
        version=1,
        producer="orders",
        consumers=("inventory", "notifications", "payments"),
        description=(
            "An unpaid order timed out or its payment failed, or a customer (or staff) cancelled it: "
            "stock is released or returned, a captured payment refunded."
        ),
        schema=data_schema(
            "order.cancelled v1",
            {
                **ORDER_MONEY_PROPERTIES,
                "reason": {
                    **TEXT,
                    "description": "customer_cancelled, staff_cancelled, payment_declined, "
                    "payment_unavailable or payment_timeout.",
                },
                "previous_status": {**TEXT, "description": "pending, awaiting_payment or confirmed."},
            },
            [*ORDER_MONEY_REQUIRED, "reason", "previous_status"],
        ),
        example={**ORDER_MONEY_EXAMPLE, "reason": "customer_cancelled", "previous_status": "confirmed"},
    ),
    EventContract(
        type="order.rejected",
        version=1,
        producer="orders",
        consumers=("notifications", "payments"),
        description="Stock could not be reserved: the order ends without any payment.",
        schema=data_schema(
            "order.rejected v1",
            {**ORDER_PARTY_PROPERTIES, "reason": {**TEXT, "description": "out_of_stock or unknown_product."}},
            ["order_id", "user_id", "customer_email", "reason"],
        ),
        example={**ORDER_PARTY, "reason": "out_of_stock"},
    ),
)

ENVELOPE_SCHEMA = {
    "$schema": DIALECT,
    "title": "Event envelope",
    "description": "What every message on domain.events carries (design section 3); `data` per type.",
    "type": "object",
    "required": ["id", "type", "version", "occurred_at", "source", "correlation_id", "causation_id", "data"],
    "properties": {
        "id": {**UUID, "description": "The event's id; consumers' inboxes deduplicate on it."},
        "type": {"type": "string", "description": "`<aggregate>.<past tense>`; the routing key."},
        "version": {"type": "integer", "minimum": 1},
        "occurred_at": TIMESTAMP,
        "source": {"type": "string", "description": "The publishing service."},
        "correlation_id": {"type": ["string", "null"], "description": "The flow (request) it belongs to."},
        "causation_id": {"type": ["string", "null"], "description": "The event being handled, if any."},
        "traceparent": {"type": "string", "description": "W3C trace context of the publishing span."},
        "data": {"type": "object"},
    },
}

"""Helpers for orders' tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from django.utils import timezone
from rest_framework.test import APIClient

from orders import handlers
from orders.models import Order, OrderItem, OrderStatus, OrderStatusChange
from shared.messaging.events import Event, new_event
from shared.messaging.inbox import handle_once
from shared.testing import (
    access_token,
    assert_error,  # noqa: F401 (the tests import them from here)
    outbox_envelopes,
)

ORDERS_URL = "/api/v1/orders/"
CART_URL = "/api/v1/cart/"
CART_ITEMS_URL = "/api/v1/cart/items/"
CHECKOUT_URL = "/api/v1/cart/checkout/"

ADDRESS = {"line1": "1 Harbour Street", "city": "Lisbon", "postal_code": "1100-001", "country": "PT"}


def order_url(order_id) -> str:
    return f"{ORDERS_URL}{order_id}/"


@dataclass(frozen=True)
class ApiUser:
    id: uuid.UUID
    email: str
    is_staff: bool = False

    @cached_property
    def token(self) -> str:
        # Signing loads (and validates) the RSA private key, which is slow: once per user is enough.
        return access_token(user_id=str(self.id), email=self.email, is_staff=self.is_staff)

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


def order_payload(*lines: tuple[dict, int], **overrides) -> dict:
    """A valid order body for catalog products (as FakeCatalog.add returns them) and quantities."""
    payload = {
        "items": [{"product_id": product["id"], "quantity": quantity} for product, quantity in lines],
        "payment_token": "tok_visa",
        "shipping_address": dict(ADDRESS),
    }
    payload.update(overrides)
    return payload


def outbox(event_type: str | None = None) -> list[dict]:
    """The data of the events written to the outbox (of one type), oldest first."""
    return [envelope["data"] for envelope in outbox_envelopes(event_type)]


def make_order(
    *,
    user_id: uuid.UUID | None = None,
    status: str = OrderStatus.PENDING,
    email: str = "carla@example.com",
    lines: tuple[tuple[str, str, int], ...] = (("Pen", "1.50", 2), ("Notebook", "4.25", 1)),
) -> Order:
    """An order in any status, written directly (the saga's tests start from a given state)."""
    now = timezone.now()
    total = sum(Decimal(price) * quantity for _name, price, quantity in lines)
    order = Order.objects.create(
        user_id=user_id or uuid.uuid4(),
        customer_email=email,
        status=status,
        total=total,
        payment_token="tok_visa",
        shipping_address=dict(ADDRESS),
        created_at=now,
        updated_at=now,
    )
    for name, price, quantity in lines:
        OrderItem.objects.create(
            order=order, product_id=uuid.uuid4(), name=name, unit_price=Decimal(price), quantity=quantity
        )
    OrderStatusChange.objects.create(order=order, status=OrderStatus.PENDING, at=now)
    if status != OrderStatus.PENDING:
        OrderStatusChange.objects.create(order=order, status=status, at=now)
    return order


def deliver(
    handler_name: str, event_type: str, data: dict, *, event: Event | None = None
) -> tuple[Event, bool]:
    """Hand an event to one of orders' handlers the way the worker does (inbox + transaction)."""
    event = event or new_event(event_type, data)
    handled = handle_once(f"orders.handlers.{handler_name}", getattr(handlers, handler_name), event)
    return event, handled


def closed_port_url() -> str:
    """A URL nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class FakeCatalog:
    """A real HTTP server standing in for catalog's product list (`?ids=` filter, one page).

    Checked, not trusted: test_fake_catalog_contract.py replays catalog's pact (what the real catalog is
    verified to answer) against it."""

    products: dict[str, dict] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    answer_status: int = 200

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(
        self,
        *,
        name: str,
        price: str,
        is_active: bool = True,
        currency: str = "USD",
        product_id: str | None = None,
        sku: str | None = None,
    ) -> dict:
        product_id = product_id or str(uuid.uuid4())
        self.products[product_id] = {
            "id": product_id,
            "sku": sku or f"SKU-{product_id[:8]}",
            "name": name,
            "price": price,
            "currency": currency,
            "is_active": is_active,
        }
        return self.products[product_id]

    def answer(self, path: str) -> tuple[int, dict]:
        if self.answer_status != 200:
            return self.answer_status, {"error": {"code": "boom", "message": "boom", "fields": {}}}
        query = parse_qs(urlsplit(path).query)
        ids = query.get("ids", [""])[0].split(",")
        results = [self.products[product_id] for product_id in ids if product_id in self.products]
        return 200, {"count": len(results), "next": None, "previous": None, "results": results}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                status, body = fake.answer(self.path)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

        return Handler

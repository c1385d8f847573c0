"""A client of the running platform, as customers, staff and operators use it (HTTP only)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import requests

from shared.testing import wait_until

TERMINAL = {"confirmed", "rejected", "cancelled"}
SHIPPING = {"line1": "1 Test Street", "city": "Testville", "postal_code": "12345", "country": "US"}


class Shop:
    def __init__(self, platform) -> None:
        self.platform = platform
        self.http = requests.Session()
        self.http.trust_env = False
        self.staff = self.login("staff@example.com", "staff-demo-pass-1")

    # --- identity ---------------------------------------------------------------------------------------

    def login(self, email: str, password: str) -> str:
        answer = self.http.post(
            self.url("identity", "/api/v1/auth/token/"),
            json={"email": email, "password": password},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access"]

    def new_customer(self) -> str:
        email = f"buyer-{uuid.uuid4().hex[:12]}@example.com"
        password = "correct-horse-battery-9"
        answer = self.http.post(
            self.url("identity", "/api/v1/auth/register/"),
            json={"email": email, "password": password, "full_name": "Test Buyer"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return self.login(email, password)

    # --- plumbing ---------------------------------------------------------------------------------------

    def url(self, service: str, path: str) -> str:
        return self.platform.url(service, path)

    def call(self, method: str, service: str, path: str, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url(service, path), headers=headers, timeout=15, **kwargs)

    # --- catalog and inventory -------------------------------------------------------------------------

    def new_product(self, *, stock: int, price: str = "10.00") -> str:
        """A product of our own with `stock` units, once inventory and orders both know it."""
        sku = f"E2E-{uuid.uuid4().hex[:10].upper()}"
        category = self.call("GET", "catalog", "/api/v1/categories/").json()["results"][0]["slug"]
        answer = self.call(
            "POST", "catalog", "/api/v1/products/", self.staff,
            json={"sku": sku, "name": f"Test product {sku}", "description": "made by a test",
                  "category": category, "price": price, "initial_stock": stock},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        product_id = answer.json()["id"]
        wait_until(lambda: self.stock(product_id) is not None, timeout=20, message="stock row in inventory")
        return product_id

    def stock(self, product_id: str) -> dict | None:
        answer = self.call("GET", "inventory", f"/api/v1/stock/{product_id}/", self.staff)
        return answer.json() if answer.status_code == 200 else None

    # --- orders -----------------------------------------------------------------------------------------

    def place_order(
        self, token: str, items: list[tuple[str, int]], payment_token: str = "tok_visa", **kwargs
    ):
        body = {
            "items": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in items],
            "payment_token": payment_token,
            "shipping_address": SHIPPING,
        }
        return self.call("POST", "orders", "/api/v1/orders/", token, json=body, **kwargs)

    def order(self, token: str, order_id: str) -> dict:
        answer = self.call("GET", "orders", f"/api/v1/orders/{order_id}/", token)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait_for_terminal(self, token: str, order_id: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (order := self.order(token, order_id))["status"] in TERMINAL and order,
            timeout=timeout,
            interval=0.1,
            message=f"order {order_id} to finish",
        )

    # --- payments, provider, notifications --------------------------------------------------------------

    def payments(self, order_id: str) -> list[dict]:
        answer = self.call("GET", "payments", f"/api/v1/payments/?order_id={order_id}", self.staff)
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]

    def provider_charges(self, order_id: str) -> list[dict]:
        answer = self.call(
            "GET", "payment_provider", "/v1/charges", params={"idempotency_key": f"order-{order_id}-charge"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body["data"] if isinstance(body, dict) else body

    def set_provider_faults(self, **faults) -> None:
        answer = self.call("PUT", "payment_provider", "/_sandbox/faults", json=faults)
        assert answer.status_code == 200, answer.text

    def clear_provider_faults(self) -> None:
        assert self.call("DELETE", "payment_provider", "/_sandbox/faults").status_code in (200, 204)

    def notifications(self, token: str) -> list[dict]:
        answer = self.call("GET", "notifications", "/api/v1/notifications/", token)
        assert answer.status_code == 200, answer.text
        return answer.json()["results"]


def money(value: str) -> Decimal:
    return Decimal(value)

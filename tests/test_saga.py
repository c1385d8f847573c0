"""The order saga across the six services, the provider sandbox and the broker, all real processes.

Each test makes its own customer and its own products, so tests never share stock.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import redis

from shared.messaging import topology
from shared.testing import BrokerObserver, wait_until
from tests.shop import TERMINAL, Shop, money


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture
def provider(shop):
    shop.clear_provider_faults()
    yield shop
    shop.clear_provider_faults()


def _stock_counts(shop: Shop, product_id: str) -> tuple[int, int, int]:
    stock = shop.stock(product_id)
    return stock["on_hand"], stock["reserved"], stock["available"]


def _settled_stock(shop: Shop, product_id: str, expected: tuple[int, int, int]) -> None:
    """Inventory acts on an order's last event a moment after the order is terminal: wait for it."""
    wait_until(lambda: _stock_counts(shop, product_id) == expected, timeout=20, message=f"stock {expected}")


def test_happy_path_confirms_and_charges_once(shop, provider):
    customer = shop.new_customer()
    first, second = shop.new_product(stock=20, price="12.50"), shop.new_product(stock=5, price="3.25")

    placed = shop.place_order(customer, [(first, 2), (second, 3)])
    assert placed.status_code == 202, placed.text
    assert placed.json()["status"] == "pending"
    order = shop.wait_for_terminal(customer, placed.json()["id"], timeout=15)

    assert order["status"] == "confirmed", order
    assert money(order["total"]) == Decimal("34.75")
    assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "confirmed"] or [
        h["status"] for h in order["history"]
    ] == ["pending", "confirmed"]
    _settled_stock(shop, first, (18, 0, 18))
    _settled_stock(shop, second, (2, 0, 2))
    payments = shop.payments(order["id"])
    assert [(p["status"], money(p["amount"])) for p in payments] == [("captured", Decimal("34.75"))]
    assert len(shop.provider_charges(order["id"])) == 1
    confirmations = wait_until(
        lambda: [n for n in shop.notifications(customer) if n["kind"] == "order_confirmed"], message="e-mail"
    )
    assert len(confirmations) == 1


def test_out_of_stock_is_rejected_without_payment(shop, provider):
    customer = shop.new_customer()
    product = shop.new_product(stock=2)

    placed = shop.place_order(customer, [(product, 3)])
    order = shop.wait_for_terminal(customer, placed.json()["id"])

    assert (order["status"], order["status_reason"]) == ("rejected", "out_of_stock")
    assert _stock_counts(shop, product) == (2, 0, 2)
    assert shop.payments(order["id"]) == []
    assert shop.provider_charges(order["id"]) == []


def test_declined_card_cancels_and_releases_the_reservation(shop, provider):
    customer = shop.new_customer()
    product = shop.new_product(stock=4)

    placed = shop.place_order(customer, [(product, 3)], payment_token="tok_chargeDeclined")
    order = shop.wait_for_terminal(customer, placed.json()["id"])

    assert (order["status"], order["status_reason"]) == ("cancelled", "payment_declined")
    _settled_stock(shop, product, (4, 0, 4))
    assert [p["status"] for p in shop.payments(order["id"])] == ["failed"]


def test_owner_cancelling_a_confirmed_order_is_refunded_and_stock_returned(shop, provider):
    customer = shop.new_customer()
    product = shop.new_product(stock=6, price="7.00")
    order = shop.wait_for_terminal(customer, shop.place_order(customer, [(product, 2)]).json()["id"])
    assert order["status"] == "confirmed"

    cancelled = shop.call("POST", "orders", f"/api/v1/orders/{order['id']}/cancel/", customer)
    assert cancelled.status_code == 202, cancelled.text

    order = shop.order(customer, order["id"])
    assert (order["status"], order["status_reason"]) == ("cancelled", "customer_cancelled")
    wait_until(
        lambda: [p["status"] for p in shop.payments(order["id"])] == ["refunded"],
        timeout=15,
        message="refund",
    )
    _settled_stock(shop, product, (6, 0, 6))
    refunds = wait_until(
        lambda: [n for n in shop.notifications(customer) if n["kind"] == "payment_refunded"], message="mail"
    )
    assert len(refunds) == 1


def test_thirty_concurrent_orders_for_the_last_ten_units(shop, provider):
    """Ten are sold and paid for once each; the twenty others never reach payments at all."""
    product = shop.new_product(stock=10, price="4.00")
    customers = [shop.new_customer() for _ in range(30)]

    with ThreadPoolExecutor(max_workers=30) as pool:
        placed = list(pool.map(lambda token: (token, shop.place_order(token, [(product, 1)])), customers))
    assert all(answer.status_code == 202 for _token, answer in placed)
    orders = [shop.wait_for_terminal(token, answer.json()["id"], timeout=60) for token, answer in placed]

    statuses = sorted(order["status"] for order in orders)
    assert statuses.count("confirmed") == 10, statuses
    assert statuses.count("rejected") == 20, statuses
    assert all(o["status_reason"] == "out_of_stock" for o in orders if o["status"] == "rejected")
    for order in orders:
        charges = [
            charge["amount"]
            for charge in shop.provider_charges(order["id"])
            if charge["status"] == "succeeded"
        ]
        payments = shop.payments(order["id"])
        if order["status"] == "confirmed":
            assert charges == ["4.00"], (order["id"], charges)
            assert [payment["status"] for payment in payments] == ["captured"], payments
        else:
            assert (charges, payments) == ([], []), order["id"]  # no units reserved, so nothing to pay
    _settled_stock(shop, product, (0, 0, 0))


SAGA_EVENTS = [
    "order.created", "inventory.reserved", "inventory.reservation_failed", "payment.succeeded",
    "payment.failed", "order.confirmed", "order.cancelled", "order.rejected", "payment.refunded",
]  # fmt: skip


class Triplicator(threading.Thread):
    """Sees every saga event and publishes it twice more, unchanged: each consumer gets it three times."""

    def __init__(self, broker_url: str) -> None:
        super().__init__(daemon=True)
        self.observer = BrokerObserver(broker_url, topology.events_exchange, SAGA_EVENTS)
        self.observer.consumer.callbacks = [self._duplicate]
        self.producer = self.observer.connection.Producer()
        self.duplicated: list[str] = []
        self.stopping = threading.Event()

    def _duplicate(self, body, message) -> None:
        message.ack()
        if message.headers.get("x-test-duplicate"):
            return  # one of ours, seen again through our own binding
        headers = {**message.headers, "x-test-duplicate": True}
        for _ in range(2):
            self.producer.publish(
                body, exchange=topology.events_exchange, routing_key=message.delivery_info["routing_key"],
                headers=headers, serializer="json", delivery_mode=2,
            )  # fmt: skip
        self.duplicated.append(body[0][0]["type"])

    def run(self) -> None:
        while not self.stopping.is_set():
            self.observer.drain(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.observer.close()


def test_every_saga_event_delivered_three_times_changes_nothing(shop, provider, platform):
    customer = shop.new_customer()
    product = shop.new_product(stock=5, price="9.99")
    triplicator = Triplicator(platform.broker_url)
    triplicator.start()
    try:
        order = shop.wait_for_terminal(customer, shop.place_order(customer, [(product, 2)]).json()["id"])
        wait_until(
            lambda: (
                {"order.created", "inventory.reserved", "payment.succeeded", "order.confirmed"}
                <= set(triplicator.duplicated)
            ),
            message="the saga's events duplicated",
        )
        time.sleep(2)  # let the duplicates be consumed
    finally:
        triplicator.stop()

    assert order["status"] == "confirmed"
    assert shop.order(customer, order["id"])["status"] == "confirmed"
    _settled_stock(shop, product, (3, 0, 3))
    assert [p["status"] for p in shop.payments(order["id"])] == ["captured"]
    assert len(shop.provider_charges(order["id"])) == 1
    assert [n["kind"] for n in shop.notifications(customer)].count("order_confirmed") == 1


def test_orders_are_accepted_from_the_read_model_while_catalog_is_stopped(shop, provider, platform):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    assert platform.supervisorctl("stop", "catalog-web").returncode == 0
    try:
        # The read model follows catalog's events: give it the moment it may still need.
        known = wait_until(
            lambda: (answer := shop.place_order(customer, [(product, 1)])).status_code == 202 and answer,
            timeout=10,
            interval=0.3,
            message="the order accepted from the read model",
        )
        unknown = shop.place_order(customer, [("00000000-0000-4000-8000-000000000000", 1)])
    finally:
        assert platform.supervisorctl("start", "catalog-web").returncode == 0

    assert known.status_code == 202, known.text
    assert shop.wait_for_terminal(customer, known.json()["id"])["status"] == "confirmed"
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_product"


def _breaker_state(platform) -> str | None:
    client = redis.Redis.from_url(platform.redis_url)
    for key in client.scan_iter("*breaker:payment_provider*state*"):
        return client.get(key).decode()
    return None


def test_provider_errors_open_the_breaker_and_a_recovery_in_time_confirms(shop, provider, platform):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    shop.set_provider_faults(error_rate=1.0)

    placed = shop.place_order(customer, [(product, 1)])
    wait_until(lambda: _breaker_state(platform) == "open", timeout=10, message="breaker open")
    shop.clear_provider_faults()
    order = shop.wait_for_terminal(customer, placed.json()["id"], timeout=20)

    assert order["status"] == "confirmed"
    assert len(shop.provider_charges(order["id"])) == 1


def test_provider_down_past_the_deadline_cancels_and_releases(shop, provider):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    shop.set_provider_faults(error_rate=1.0)

    order = shop.wait_for_terminal(
        customer, shop.place_order(customer, [(product, 2)]).json()["id"], timeout=30
    )

    assert (order["status"], order["status_reason"]) == ("cancelled", "payment_unavailable")
    _settled_stock(shop, product, (3, 0, 3))
    assert shop.provider_charges(order["id"]) == []


def test_reservation_expiry_cancels_and_a_late_payment_is_refused(shop, provider, platform):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    assert platform.supervisorctl("stop", "payments-worker").returncode == 0
    try:
        placed = shop.place_order(customer, [(product, 1)])
        order = shop.wait_for_terminal(customer, placed.json()["id"], timeout=40)
        assert (order["status"], order["status_reason"]) == ("cancelled", "payment_timeout")
        _settled_stock(shop, product, (3, 0, 3))
    finally:
        assert platform.supervisorctl("start", "payments-worker").returncode == 0

    # The payments worker now finds the stale reservation: it must not charge it. A settled payment row
    # (anything but pending) is the positive signal that it has decided.
    payments = wait_until(
        lambda: [p for p in shop.payments(order["id"]) if p["status"] != "pending"],
        timeout=20,
        message="payment",
    )
    assert [p["status"] for p in payments] in (["voided"], ["failed"]), payments
    assert shop.provider_charges(order["id"]) == []
    assert shop.order(customer, order["id"])["status"] == "cancelled"


def _pid(platform, program: str) -> int:
    _state, pid = platform.processes()[program]
    return pid


def test_killed_workers_mid_saga_lose_nothing_and_money_balances(shop, provider, platform):
    products = {shop.new_product(stock=8, price="5.00"): 8, shop.new_product(stock=8, price="2.50"): 8}
    customers = [shop.new_customer() for _ in range(8)]
    product_ids = list(products)

    def order_for(index_token):
        index, token = index_token
        items = [(product_ids[index % 2], 2), (product_ids[(index + 1) % 2], 1)]
        payment = "tok_chargeDeclined" if index % 4 == 3 else "tok_visa"
        return token, shop.place_order(token, items, payment_token=payment)

    with ThreadPoolExecutor(max_workers=8) as pool:
        placed = list(pool.map(order_for, enumerate(customers)))
        time.sleep(0.3)
        for program in ("inventory-worker", "payments-worker", "orders-worker"):
            os.kill(_pid(platform, program), signal.SIGKILL)
    orders = [shop.wait_for_terminal(token, answer.json()["id"], timeout=90) for token, answer in placed]

    assert all(order["status"] in TERMINAL for order in orders)
    # Orders are terminal; inventory and payments act on the last events a moment later (a killed worker
    # is being restarted meanwhile), so their books are read once they settle.
    for product_id in products:
        wait_until(
            lambda pid=product_id: shop.stock(pid)["reserved"] == 0, timeout=60, message="stock settled"
        )
    for product_id, initial in products.items():
        stock = shop.stock(product_id)
        sold = initial - stock["on_hand"] - stock["reserved"]
        assert sold == sum(
            item["quantity"] for o in orders if o["status"] == "confirmed" for item in o["items"]
            if item["product_id"] == product_id
        )  # fmt: skip
    confirmed_total = sum(money(o["total"]) for o in orders if o["status"] == "confirmed")
    settled = {"captured", "failed", "refunded", "voided"}
    for order in orders:
        wait_until(
            lambda oid=order["id"]: all(p["status"] in settled for p in shop.payments(oid)),
            timeout=60,
            message="payments settled",
        )
    captured = Decimal("0")
    for order in orders:
        charges = shop.provider_charges(order["id"])
        assert len(charges) <= 1
        payments = shop.payments(order["id"])
        captured += sum(money(p["amount"]) for p in payments if p["status"] == "captured")
        if order["status"] == "confirmed":
            assert len(charges) == 1
    assert captured == confirmed_total


BAD_ORDER_BODIES = [
    ("missing items", {"payment_token": "tok_visa", "shipping_address": {}}),
    ("items not a list", {"items": "many", "payment_token": "tok_visa"}),
    ("zero quantity", {"items": [{"product_id": "P", "quantity": 0}], "payment_token": "tok_visa"}),
    ("negative quantity", {"items": [{"product_id": "P", "quantity": -2}], "payment_token": "tok_visa"}),
    ("huge quantity", {"items": [{"product_id": "P", "quantity": 10**9}], "payment_token": "tok_visa"}),
    ("quantity as text", {"items": [{"product_id": "P", "quantity": "two"}], "payment_token": "tok_visa"}),
    ("unknown product", {"items": [{"product_id": "00000000-0000-4000-8000-00000000abcd", "quantity": 1}]}),
    ("no payment token", {"items": [{"product_id": "P", "quantity": 1}]}),
]


def _error_code(answer) -> str:
    body = answer.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"]), body
    return body["error"]["code"]


@pytest.mark.parametrize(("case", "body"), BAD_ORDER_BODIES, ids=[case for case, _ in BAD_ORDER_BODIES])
def test_bad_order_input_is_refused_and_writes_nothing(shop, case, body):
    customer = shop.new_customer()
    product = shop.new_product(stock=5)
    for item in body.get("items", []) if isinstance(body.get("items"), list) else []:
        if item["product_id"] == "P":
            item["product_id"] = product
    body.setdefault("shipping_address", {"line1": "1 St", "city": "X", "postal_code": "1", "country": "US"})

    answer = shop.call("POST", "orders", "/api/v1/orders/", customer, json=body)

    assert 400 <= answer.status_code < 500, answer.text
    assert _error_code(answer)
    assert shop.call("GET", "orders", "/api/v1/orders/", customer).json()["count"] == 0
    assert _stock_counts(shop, product) == (5, 0, 5)


def test_malformed_json_is_refused_by_every_write_endpoint(shop):
    customer = shop.new_customer()
    product = shop.new_product(stock=2)
    writes = [
        ("identity", "/api/v1/auth/register/", None),
        ("catalog", "/api/v1/products/", shop.staff),
        ("inventory", f"/api/v1/stock/{product}/adjustments/", shop.staff),
        ("orders", "/api/v1/orders/", customer),
        ("orders", "/api/v1/cart/items/", customer),
        ("orders", "/api/v1/cart/checkout/", customer),
    ]
    for service, path, token in writes:
        headers = {"Content-Type": "application/json"}
        answer = shop.call("POST", service, path, token, data='{"items": [', headers=headers)
        assert answer.status_code == 400, (service, path, answer.text)
        assert _error_code(answer) == "malformed_request", (service, path)
    assert _stock_counts(shop, product) == (2, 0, 2)


def test_bad_adjustments_and_product_writes_are_refused(shop):
    product = shop.new_product(stock=2)
    bad_adjustments = [
        {"delta": 0, "reason": "x"},
        {"delta": -5, "reason": "too many"},
        {"delta": 1},
        {"delta": "a"},
    ]
    for body in bad_adjustments:
        answer = shop.call(
            "POST", "inventory", f"/api/v1/stock/{product}/adjustments/", shop.staff, json=body
        )
        assert 400 <= answer.status_code < 500, (body, answer.text)
        _error_code(answer)
    assert _stock_counts(shop, product) == (2, 0, 2)

    before = shop.call("GET", "catalog", "/api/v1/products/").json()["count"]
    for body in [
        {},
        {"sku": "X", "name": "n", "price": "-1", "category": "nope"},
        {"sku": "Y", "price": "abc"},
    ]:
        answer = shop.call("POST", "catalog", "/api/v1/products/", shop.staff, json=body)
        assert answer.status_code == 400, answer.text
        assert _error_code(answer) == "validation_error"
    assert shop.call("GET", "catalog", "/api/v1/products/").json()["count"] == before

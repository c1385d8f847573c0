"""The saga timeline on the running platform: an order placed through the gateway, its timeline opened
through the gateway by staff in the orders admin. Every service answers its part over its `/internal/`
route with orders' service token from identity; the page lists the journey in time order, and names
payments as where a saga waits while payments' worker is stopped (docs/admin.md, "The saga timeline")."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest
import requests

from shared.testing import wait_until
from tests.admin_session import signed_in_session
from tests.shop import SHIPPING, TERMINAL, Shop

ROW = re.compile(
    r'<tr class="timeline-entry [^"]*" data-at="(?P<at>[^"]+)" data-service="(?P<service>[^"]+)" '
    r'data-kind="(?P<kind>[^"]+)" data-what="(?P<what>[^"]+)" data-event-id="(?P<event_id>[^"]*)">'
    r"(?P<cells>.*?)</tr>",
    re.S,
)
SUMMARY = re.compile(r'<div class="saga-summary" id="saga-summary" (?P<attrs>[^>]+)>')
SERVICE_STATE = re.compile(
    r'<tr data-service="(?P<service>[^"]+)" data-available="(?P<available>true|false)">'
)

# The happy path's events, each published by one service and consumed by the next (docs/saga.md).
CHAIN = [
    ("orders", "published", "order.created"),
    ("inventory", "consumed", "order.created"),
    ("inventory", "published", "inventory.reserved"),
    ("payments", "consumed", "inventory.reserved"),
    ("payments", "published", "payment.succeeded"),
    ("orders", "consumed", "payment.succeeded"),
    ("orders", "published", "order.confirmed"),
    ("notifications", "consumed", "order.confirmed"),
]


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="module")
def staff(platform) -> requests.Session:
    return signed_in_session(platform)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # talk to 127.0.0.1 directly, whatever proxy the environment names
    return session


def place_through_gateway(platform, token: str, product_id: str, *, request_id: str) -> str:
    answer = _session().post(
        platform.gateway_url("/api/v1/orders/"),
        json={
            "items": [{"product_id": product_id, "quantity": 1}],
            "payment_token": "tok_visa",
            "shipping_address": SHIPPING,
        },
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
        timeout=15,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def order_status(platform, token: str, order_id: str) -> str:
    answer = _session().get(
        platform.gateway_url(f"/api/v1/orders/{order_id}/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


class TimelinePage:
    def __init__(self, html: str) -> None:
        self.html = html
        self.rows = [match.groupdict() for match in ROW.finditer(html)]
        summary = SUMMARY.search(html)
        assert summary, html[:3000]
        self.summary = dict(re.findall(r'data-([\w-]+)="([^"]*)"', summary["attrs"]))
        self.services = {
            match["service"]: match["available"] == "true" for match in SERVICE_STATE.finditer(html)
        }

    def has(self, service: str, kind: str, what: str) -> bool:
        return any((row["service"], row["kind"], row["what"]) == (service, kind, what) for row in self.rows)

    def position(self, service: str, kind: str, what: str) -> int:
        return next(
            index
            for index, row in enumerate(self.rows)
            if (row["service"], row["kind"], row["what"]) == (service, kind, what)
        )


def open_timeline(platform, staff: requests.Session, order_id: str) -> TimelinePage:
    page = staff.get(platform.gateway_url(f"/admin/orders/orders/order/{order_id}/timeline/"), timeout=30)
    assert page.status_code == 200, page.text[:3000]
    return TimelinePage(page.text)


def test_a_confirmed_order_shows_its_journey_across_every_service_in_time_order(platform, shop, staff):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    request_id = f"timeline-{uuid.uuid4()}"
    order_id = place_through_gateway(platform, customer, product, request_id=request_id)
    wait_until(
        lambda: order_status(platform, customer, order_id) == "confirmed", timeout=30, message="confirmed"
    )

    # The e-mail follows the confirmation: wait until notifications' part is there too.
    page = wait_until(
        lambda: (
            (page := open_timeline(platform, staff, order_id)).has("notifications", "record", "notification")
            and page
        ),
        timeout=30,
        interval=0.5,
        message="every service's part on the timeline",
    )

    assert page.services == dict.fromkeys(platform.services, True)  # all six answered
    assert (page.summary["status"], page.summary["terminal"], page.summary["waiting-on"]) == (
        "confirmed",
        "true",
        "",
    )
    times = [datetime.fromisoformat(row["at"]) for row in page.rows]
    assert times == sorted(times)
    positions = [page.position(*step) for step in CHAIN]
    assert positions == sorted(positions), [page.rows[index] for index in positions]
    for service in ("orders", "inventory", "payments", "notifications"):
        assert any(row["service"] == service for row in page.rows), service
    assert page.has("inventory", "record", "reservation")
    assert page.has("payments", "record", "payment")
    assert page.has("orders", "record", "status")
    # One flow: the request's id travelled with every event, published and consumed.
    events = [row for row in page.rows if row["kind"] in ("published", "consumed")]
    assert events and all(f"<code>{request_id}</code>" in row["cells"] for row in events)
    assert f'href="/admin/orders/orders/order/{order_id}/change/"' in page.html
    assert "/admin/inventory/inventory/reservation/" in page.html
    assert "/admin/payments/payments/payment/" in page.html
    assert "/admin/notifications/notifications/notification/" in page.html
    # The order's own page links the timeline.
    change = staff.get(platform.gateway_url(f"/admin/orders/orders/order/{order_id}/change/"), timeout=15)
    assert f'href="/admin/orders/orders/order/{order_id}/timeline/"' in change.text


def test_a_saga_waiting_on_a_stopped_payments_worker_names_payments(platform, shop, staff):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    assert platform.supervisorctl("stop", "payments-worker").returncode == 0
    try:
        order_id = place_through_gateway(platform, customer, product, request_id=f"stuck-{uuid.uuid4()}")
        # inventory reserved it and orders took the reservation: only payments' part is missing.
        wait_until(
            lambda: order_status(platform, customer, order_id) == "awaiting_payment",
            timeout=20,
            message="awaiting payment",
        )

        page = open_timeline(platform, staff, order_id)

        assert page.summary["terminal"] == "false"
        assert page.summary["waiting-on"] == "payments", page.html[:5000]
        assert re.search(r'Waiting on <strong class="waiting-on">payments</strong>', page.html)
        assert re.search(
            r"inventory\.reserved published by inventory .{1,40} ago; payments has not consumed it", page.html
        )
        assert page.has("inventory", "published", "inventory.reserved")
        assert not page.has("payments", "consumed", "inventory.reserved")
        assert page.services["payments"] is True  # its web answers; its worker is what is stopped
    finally:
        assert platform.supervisorctl("start", "payments-worker").returncode == 0
    # Back to normal: the saga ends (paid, or cancelled if the reservation expired meanwhile).
    wait_until(
        lambda: order_status(platform, customer, order_id) in TERMINAL, timeout=60, message="the saga to end"
    )

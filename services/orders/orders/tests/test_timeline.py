"""The saga timeline in orders' admin (orders.timeline): every service's part of an order, asked over real
HTTP with orders' own service token, merged in time order; where a saga waits; a service that does not
answer shown as unavailable, never a server error.

The other services are real HTTP servers started here (FakeService): identity's grant issues signed
service tokens, and each service checks the token on its `/internal/` route as shared.auth does before
answering the part a test gives it. orders' own part comes from its database.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_redis import get_redis_connection

from orders.models import Order, OrderStatus, OrderStatusChange
from orders.tests.helpers import closed_port_url, deliver, make_order
from shared import http
from shared.admin_ui.nav import platform_services
from shared.admin_ui.testing import admin_shadow_login
from shared.auth.client import forget_token_clients
from shared.auth.tokens import TokenRefused, Verifier
from shared.messaging.events import new_event, publish_event
from shared.messaging.models import InboxMessage, OutboxEvent
from shared.messaging.relay import mark_published
from shared.saga import SAGA_SCOPE
from shared.saga.testing import signed_service_token
from shared.testing import event_data

pytestmark = pytest.mark.django_db

ORDERS_ADMIN = "/admin/orders/orders/order/"
SAGA_PART = re.compile(r"^/internal/v1/saga/(?P<order_id>[0-9a-f-]{36})/$")
TOKEN_PATH = "/internal/v1/oauth/token/"


class FakeService:
    """One of the platform's other services, over HTTP: `GET /internal/v1/saga/<id>/` answers `part`
    (or `status` with an error body) to a valid service token with saga:read, and 401/403 otherwise;
    as identity it also runs the client-credentials grant for orders' client."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.part: dict | None = None
        self.status = 200
        self.saga_requests: list[str] = []
        self.token_requests = 0
        self.refuse_tokens = 0  # how many more valid tokens to refuse (as after a key change)
        verifier = Verifier(public_key=settings.JWT["PUBLIC_KEY"], issuer=settings.JWT["ISSUER"])
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = SAGA_PART.match(self.path)
                if match is None:
                    return self._answer(404, {"error": {"code": "not_found", "message": "no", "fields": {}}})
                try:
                    _scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                    verifier.service(token).require(SAGA_SCOPE)
                    if fake.refuse_tokens:
                        fake.refuse_tokens -= 1
                        raise TokenRefused("signed with a key no longer trusted")
                except TokenRefused as exc:
                    return self._answer(
                        exc.status, {"error": {"code": exc.code, "message": exc.message, "fields": {}}}
                    )
                fake.saga_requests.append(match["order_id"])
                if fake.status != 200:
                    return self._answer(
                        fake.status, {"error": {"code": "server_error", "message": "x", "fields": {}}}
                    )
                return self._answer(200, fake.answer(match["order_id"]))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                expected = (settings.SERVICE_CLIENT["ID"], settings.SERVICE_CLIENT["SECRET"])
                if fake.name != "identity" or self.path != TOKEN_PATH:
                    return self._answer(404, {})
                fake.token_requests += 1
                if (form.get("client_id"), form.get("client_secret")) != expected:
                    return self._answer(
                        401, {"error": {"code": "invalid_client", "message": "no", "fields": {}}}
                    )
                token = signed_service_token(client_id=form["client_id"], scope=form.get("scope", ""))
                body = {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": form["scope"],
                }
                return self._answer(200, body)

            def _answer(self, status: int, body) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def answer(self, order_id: str) -> dict:
        part = {"consumes": [], "outbox": [], "inbox": [], "records": []} | (self.part or {})
        dead = {"messages": [], "scanned": 0, "complete": True, "error": None}
        return {"service": self.name, "order_id": order_id, "dead_letters": dead} | part

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _forget_clients_and_breakers() -> None:
    redis = get_redis_connection("default")
    for service in platform_services():
        keys = list(redis.scan_iter(f"breaker:{service}:*"))
        if keys:
            redis.delete(*keys)
    http.forget_clients()
    forget_token_clients()


@pytest.fixture
def platform(settings):
    """Every other service as a FakeService, catalog down (nothing listens where it should be)."""
    _forget_clients_and_breakers()
    fakes = {name: FakeService(name) for name in platform_services() if name not in ("orders", "catalog")}
    settings.SERVICE_URLS = {
        **settings.SERVICE_URLS,
        **{name: fake.url for name, fake in fakes.items()},
        "catalog": closed_port_url(),
    }
    yield fakes
    for fake in fakes.values():
        fake.stop()
    _forget_clients_and_breakers()


@pytest.fixture
def operator(client):
    admin_shadow_login(client)
    return client


def _iso(moment) -> str:
    return moment.isoformat()


def _placed(
    status: str = OrderStatus.PENDING, *, age: timedelta = timedelta(seconds=5), reserved_id: str = ""
) -> tuple[Order, str]:
    """An order placed `age` ago, as placing it leaves it (order.created published); awaiting payment, it
    consumed inventory.reserved (`reserved_id`) 50 ms after it was placed. Returns it and the id of its
    order.created."""
    with transaction.atomic():
        order = make_order()
        event = publish_event("order.created", event_data("order.created", order_id=str(order.id)))
    mark_published([event.id])
    placed = order.created_at - age
    Order.objects.filter(pk=order.pk).update(created_at=placed)
    OrderStatusChange.objects.filter(order=order).update(at=placed)
    OutboxEvent.objects.filter(pk=event.id).update(created_at=placed, published_at=placed)
    if status == OrderStatus.AWAITING_PAYMENT:
        reserved_data = event_data("inventory.reserved", order_id=str(order.id))
        reserved = replace(new_event("inventory.reserved", reserved_data), id=reserved_id)
        deliver("on_inventory_reserved", reserved.type, reserved.data, event=reserved)
        later = placed + timedelta(milliseconds=50)
        InboxMessage.objects.filter(event_id=reserved_id).update(received_at=later)
        OrderStatusChange.objects.filter(order=order, status=status).update(at=later)
    order.refresh_from_db()
    return order, event.id


def _inventory_part(order: Order, order_created_id: str, reserved_id: str) -> dict:
    at = order.created_at
    return {
        "consumes": ["order.created", "order.confirmed", "order.cancelled", "payment.failed"],
        "inbox": [
            {
                "id": 11,
                "consumer": "inventory.handlers.on_order_created",
                "event_id": order_created_id,
                "event_type": "order.created",
                "correlation_id": "flow-1",
                "received_at": _iso(at + timedelta(milliseconds=20)),
                "deliveries": 2,
            }
        ],
        "outbox": [
            {
                "id": reserved_id,
                "event_type": "inventory.reserved",
                "correlation_id": "flow-1",
                "causation_id": order_created_id,
                "created_at": _iso(at + timedelta(milliseconds=30)),
                "published_at": _iso(at + timedelta(milliseconds=32)),
                "attempts": 1,
                "last_error": "",
            }
        ],
        "records": [
            {
                "kind": "reservation",
                "at": _iso(at + timedelta(milliseconds=25)),
                "summary": "2 units of 1 products held",
                "status": "held",
                "object_id": "9d5e0c1a-0000-4000-8000-000000000001",
                "admin_model": "inventory.reservation",
                "details": {"expires_at": _iso(at + timedelta(minutes=15))},
            }
        ],
    }


def _rows(html: str) -> list[dict]:
    """The timeline's rows as the page marks them (data-* attributes)."""
    pattern = re.compile(
        r'<tr class="timeline-entry [^"]*" data-at="(?P<at>[^"]+)" data-service="(?P<service>[^"]+)" '
        r'data-kind="(?P<kind>[^"]+)" data-what="(?P<what>[^"]+)" data-event-id="(?P<event_id>[^"]*)">'
    )
    return [match.groupdict() for match in pattern.finditer(html)]


def _summary(html: str) -> dict:
    match = re.search(r'<div class="saga-summary" id="saga-summary" (?P<attrs>[^>]+)>', html)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', match["attrs"]))


def test_a_confirmed_order_shows_every_services_part_in_time_order(operator, platform):
    reserved_id, succeeded_id = str(uuid.uuid4()), str(uuid.uuid4())
    order, created_id = _placed(OrderStatus.AWAITING_PAYMENT, reserved_id=reserved_id)
    platform["inventory"].part = _inventory_part(order, created_id, reserved_id)
    at = order.created_at
    platform["payments"].part = {
        "consumes": ["inventory.reserved", "order.cancelled"],
        "inbox": [
            {
                "id": 21,
                "consumer": "payments.handlers.on_inventory_reserved",
                "event_id": reserved_id,
                "event_type": "inventory.reserved",
                "correlation_id": "flow-1",
                "received_at": _iso(at + timedelta(milliseconds=40)),
                "deliveries": 1,
            }
        ],
        "outbox": [
            {
                "id": succeeded_id,
                "event_type": "payment.succeeded",
                "correlation_id": "flow-1",
                "causation_id": reserved_id,
                "created_at": _iso(at + timedelta(milliseconds=90)),
                "published_at": _iso(at + timedelta(milliseconds=91)),
                "attempts": 1,
                "last_error": "",
            }
        ],
        "records": [
            {
                "kind": "payment",
                "at": _iso(at + timedelta(milliseconds=41)),
                "summary": "payment of 7.25 USD created",
                "status": "pending",
                "object_id": "5a000000-0000-4000-8000-000000000002",
                "admin_model": "payments.payment",
                "details": {},
            }
        ],
    }
    platform["notifications"].part = {"consumes": ["order.confirmed"]}

    page = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/")
    html = page.content.decode()

    assert page.status_code == 200
    rows = _rows(html)
    assert [(row["service"], row["kind"], row["what"]) for row in rows] == [
        ("orders", "record", "status"),  # placed: pending
        ("orders", "published", "order.created"),
        ("inventory", "consumed", "order.created"),  # +20 ms
        ("inventory", "record", "reservation"),
        ("inventory", "published", "inventory.reserved"),
        ("payments", "consumed", "inventory.reserved"),  # +40 ms
        ("payments", "record", "payment"),
        ("orders", "consumed", "inventory.reserved"),  # +50 ms
        ("orders", "record", "status"),  # awaiting_payment
        ("payments", "published", "payment.succeeded"),  # +90 ms
    ]
    times = [row["at"] for row in rows]
    assert times == sorted(times)
    assert {row["service"] for row in rows} == {"orders", "inventory", "payments"}
    # ids link into the admin that owns them, on the gateway's origin
    assert (
        'href="/admin/inventory/inventory/reservation/9d5e0c1a-0000-4000-8000-000000000001/change/"' in html
    )
    assert f'href="/admin/payments/messaging/outboxevent/{succeeded_id}/change/"' in html
    assert 'href="/admin/inventory/messaging/inboxmessage/11/change/"' in html
    assert f'href="/admin/orders/messaging/outboxevent/{created_id}/change/"' in html
    assert "delivered 2 times" in html
    # catalog does not answer: said so, the page is still whole
    assert re.search(r'data-service="catalog" data-available="false"', html)
    assert re.search(r'data-service="identity" data-available="true"', html)
    # every service asked once, with one token from identity
    assert [fake.saga_requests for fake in platform.values()] == [[str(order.id)]] * len(platform)
    assert platform["identity"].token_requests == 1


def test_the_token_is_kept_between_page_views(operator, platform):
    order, _created_id = _placed()

    for _ in range(3):
        assert operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").status_code == 200

    assert platform["identity"].token_requests == 1
    assert len(platform["inventory"].saga_requests) == 3


def test_a_refused_token_is_replaced_and_the_call_made_again(operator, platform):
    order, _created_id = _placed()
    operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/")
    platform["inventory"].refuse_tokens = 1

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    assert re.search(r'data-service="inventory" data-available="true"', html)
    assert platform["identity"].token_requests == 2


def test_an_event_not_consumed_names_the_service_the_saga_waits_on(operator, platform, settings):
    settings.SAGA_STUCK_SECONDS = 60
    reserved_id = str(uuid.uuid4())
    order, created_id = _placed(
        OrderStatus.AWAITING_PAYMENT, age=timedelta(minutes=3), reserved_id=reserved_id
    )
    platform["inventory"].part = _inventory_part(order, created_id, reserved_id)
    platform["payments"].part = {"consumes": ["inventory.reserved"]}

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    summary = _summary(html)
    assert (summary["status"], summary["terminal"], summary["stuck"]) == ("awaiting_payment", "false", "true")
    assert summary["waiting-on"] == "payments"
    assert 'Waiting on <strong class="waiting-on">payments</strong>' in html
    assert re.search(
        r"inventory\.reserved published by inventory [\d.]+ (ms|s|min) .*ago; payments has not consumed it",
        html,
    )


def test_an_event_still_in_an_outbox_comes_first(operator, platform):
    order, created_id = _placed()
    part = _inventory_part(order, created_id, str(uuid.uuid4()))
    part["outbox"][0] |= {"published_at": None, "attempts": 3, "last_error": "ConnectionRefusedError: broker"}
    platform["inventory"].part = part

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    assert _summary(html)["waiting-on"] == "inventory"
    assert "inventory.reserved has waited in inventory&#x27;s outbox" in html
    assert "last error: ConnectionRefusedError: broker" in html
    assert [row["kind"] for row in _rows(html) if row["what"] == "inventory.reserved"] == ["pending"]


def test_a_dead_lettered_event_is_shown_and_named_as_where_it_waits(operator, platform):
    order, created_id = _placed()
    platform["inventory"].part = {
        "consumes": ["order.created"],
        "dead_letters": {
            "messages": [
                {
                    "id": created_id,
                    "event_type": "order.created",
                    "correlation_id": "flow-1",
                    "reason": "delivery_limit",
                    "queue": "inventory.events",
                    "death_count": 1,
                    "first_death_at": _iso(order.created_at + timedelta(seconds=2)),
                    "replayed": 0,
                }
            ],
            "scanned": 1,
            "complete": True,
            "error": None,
        },
    }

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    assert _summary(html)["waiting-on"] == "inventory"
    assert "inventory dead-lettered order.created (delivery_limit)" in html
    assert ("inventory", "dead-lettered", "order.created") in [
        (row["service"], row["kind"], row["what"]) for row in _rows(html)
    ]
    assert 'href="/admin/inventory/messaging/dead-letters/"' in html


def test_with_nothing_outstanding_a_pending_order_waits_on_inventory(operator, platform):
    order, created_id = _placed()
    part = _inventory_part(order, created_id, str(uuid.uuid4()))
    platform["inventory"].part = {**part, "outbox": [], "records": []}  # consumed, not answered yet

    assert (
        _summary(operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode())["waiting-on"]
        == "inventory"
    )


def test_services_that_fail_are_unavailable_and_identity_down_leaves_orders_own_part(
    operator, platform, settings
):
    order, _created_id = _placed()
    platform["payments"].status = 500
    platform["notifications"].answer = lambda order_id: {"hello": "world"}  # not a saga part

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    assert re.search(r'data-service="payments" data-available="false"', html)
    assert "answered HTTP 500" in html or "HTTP 500 from payments" in html
    assert re.search(r'data-service="notifications" data-available="false"', html)
    assert "answered without consumes" in html

    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": closed_port_url()}
    forget_token_clients()
    page = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "no service token: identity did not answer" in html
    assert not re.search(r'data-service="inventory" data-available="true"', html)
    assert ("orders", "published", "order.created") in [
        (r["service"], r["kind"], r["what"]) for r in _rows(html)
    ]


def test_a_finished_order_says_so_and_lists_what_is_still_outstanding(operator, platform):
    order, _created_id = _placed()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CONFIRMED)
    with transaction.atomic():
        confirmed = publish_event("order.confirmed", event_data("order.confirmed", order_id=str(order.id)))
    mark_published([confirmed.id])
    platform["notifications"].part = {"consumes": ["order.confirmed"]}

    html = operator.get(f"{ORDERS_ADMIN}{order.id}/timeline/").content.decode()

    assert _summary(html)["terminal"] == "true"
    assert _summary(html)["waiting-on"] == ""
    assert "The saga has finished." in html
    assert "order.confirmed published by orders" in html and "notifications has not consumed it" in html


def test_the_order_page_and_the_list_link_the_timeline(operator, platform):
    order, _created_id = _placed()
    link = f'href="{ORDERS_ADMIN}{order.id}/timeline/"'

    assert link in operator.get(f"{ORDERS_ADMIN}{order.id}/change/").content.decode()
    assert link in operator.get(ORDERS_ADMIN).content.decode()
    assert operator.get(f"{ORDERS_ADMIN}{uuid.uuid4()}/timeline/").status_code == 404


def test_the_timeline_is_for_staff_who_may_view_orders(client, platform):
    order, _created_id = _placed()
    url = f"{ORDERS_ADMIN}{order.id}/timeline/"
    assert client.get(url).status_code == 302  # to the login

    no_permissions = get_user_model().objects.create(username=str(uuid.uuid4()), is_staff=True)
    client.force_login(no_permissions)
    assert client.get(url).status_code == 403
    assert platform["inventory"].saga_requests == []

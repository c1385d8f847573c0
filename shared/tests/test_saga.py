"""An order's saga as each service tells it (shared.saga): the outbox and inbox rows found by order, the
inbox's delivery count, dead letters peeked in place, the internal route's guard and its schema; and the
service token client (shared.auth.client) against a real HTTP server standing in for identity."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import redis
from django.conf import settings
from django.db import transaction
from kombu import Connection
from rest_framework.test import APIClient

from shared.auth.client import (
    ServiceTokenClient,
    ServiceTokenUnavailable,
    forget_token_clients,
    service_token,
)
from shared.http import ServiceClient
from shared.messaging import deadletters, inbox, topology
from shared.messaging.events import Event, new_event, publish_event
from shared.messaging.models import InboxMessage, OutboxEvent
from shared.messaging.relay import DELIVER_TASK
from shared.observability import context
from shared.saga.testing import signed_service_token
from shared.testing import access_token, assert_error, bearer_client, openapi_errors
from tests.celery_app import app as celery_app
from tests.conftest import SERVICE

SAGA_URL = "/internal/v1/saga/{order_id}/"
SAGA_PATH = "/internal/v1/saga/{order_id}/"  # as the OpenAPI document names it


@pytest.fixture(autouse=True)
def no_broker_for_the_fast_path(monkeypatch):
    """Rows stay pending: these tests read the outbox, they do not need the relay."""
    from shared.messaging import relay

    monkeypatch.setattr(relay, "publish_after_commit", lambda _event_id: None)


def _publish(event_type: str, data: dict, *, correlation_id: str = "flow-1") -> Event:
    with context.bound(correlation_id=correlation_id), transaction.atomic():
        return publish_event(event_type, data)


def _delivered(data: dict, *, correlation_id: str = "flow-1") -> Event:
    """An event as a consumer receives it (from another service)."""
    with context.bound(correlation_id=correlation_id):
        return Event.from_envelope(new_event("ledger.credited", data).as_envelope())


# --- the outbox and the inbox, by order -------------------------------------------------------------------


@pytest.mark.django_db
def test_an_outbox_row_names_the_order_and_the_flow_of_its_event():
    order_id = uuid.uuid4()

    about_order = _publish(
        "ledger.noted", {"order_id": str(order_id), "account": "a"}, correlation_id="req-7"
    )
    about_none = _publish("ledger.noted", {"account": "a"})
    malformed = _publish("ledger.noted", {"order_id": "not-a-uuid"})

    row = OutboxEvent.objects.get(id=about_order.id)
    assert (row.order_id, row.correlation_id) == (order_id, "req-7")
    assert OutboxEvent.objects.get(id=about_none.id).order_id is None
    assert OutboxEvent.objects.get(id=malformed.id).order_id is None


@pytest.mark.django_db
def test_the_inbox_counts_every_delivery_and_names_the_order_and_flow():
    order_id = uuid.uuid4()
    event = _delivered({"order_id": str(order_id), "account": "a", "amount": 1}, correlation_id="req-8")
    handled = []

    first = inbox.handle_once("tests.consumer", handled.append, event)
    second = inbox.handle_once("tests.consumer", handled.append, event)
    third = inbox.handle_once("tests.consumer", handled.append, event)
    other_consumer = inbox.handle_once("tests.other", handled.append, event)

    assert (first, second, third, other_consumer) == (True, False, False, True)
    assert handled == [event, event]  # once per consumer
    rows = {row.consumer: row for row in InboxMessage.objects.filter(event_id=event.id)}
    assert (rows["tests.consumer"].deliveries, rows["tests.other"].deliveries) == (3, 1)
    assert {(row.order_id, row.correlation_id) for row in rows.values()} == {(order_id, "req-8")}


@pytest.mark.django_db
def test_a_failed_handler_leaves_no_inbox_row_and_counts_no_delivery():
    event = _delivered({"order_id": str(uuid.uuid4())})

    def failing(_event):
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        inbox.handle_once("tests.consumer", failing, event)
    assert inbox.handle_once("tests.consumer", lambda _event: None, event) is True
    assert InboxMessage.objects.get(event_id=event.id).deliveries == 1


# --- GET /internal/v1/saga/<order_id>/ --------------------------------------------------------------------


def records(*, order_id):
    """This test service's `SAGA_RECORDS` selector: what a service's own records look like."""
    return [
        {
            "kind": "credit",
            "at": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
            "summary": "credited 5",
            "status": "done",
            "object_id": str(order_id),
            "admin_model": "ledger.credit",
            "details": {"amount": 5},
        },
        {
            "kind": "account",
            "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "summary": "opened",
            "status": "",
            "object_id": None,
            "admin_model": "",
            "details": {},
        },
    ]


@pytest.fixture
def with_records(settings):
    settings.SAGA_RECORDS = "tests.test_saga.records"


@pytest.fixture
def service_client():
    return bearer_client(signed_service_token(client_id="orders", scope="saga:read"))


@pytest.mark.django_db
def test_a_service_with_the_scope_gets_the_orders_rows_oldest_first(service_client, with_records):
    order_id, other_order = uuid.uuid4(), uuid.uuid4()
    published = [_publish("ledger.noted", {"order_id": str(order_id), "n": n}) for n in range(2)]
    _publish("ledger.noted", {"order_id": str(other_order)})
    consumed = _delivered({"order_id": str(order_id)}, correlation_id="flow-2")
    inbox.handle_once("tests.consumer", lambda _event: None, consumed)
    inbox.handle_once("tests.consumer", lambda _event: None, consumed)

    response = service_client.get(SAGA_URL.format(order_id=order_id))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["service"], body["order_id"]) == (SERVICE, str(order_id))
    assert body["consumes"] == sorted(settings.EVENT_SUBSCRIPTIONS)
    assert [row["id"] for row in body["outbox"]] == [event.id for event in published]
    assert body["outbox"][0]["published_at"] is None  # still waiting in the outbox
    assert body["outbox"][0]["correlation_id"] == "flow-1"
    assert "envelope" not in body["outbox"][0]  # envelopes may carry card tokens
    assert [(row["event_id"], row["deliveries"], row["correlation_id"]) for row in body["inbox"]] == [
        (consumed.id, 2, "flow-2")
    ]
    assert [record["kind"] for record in body["records"]] == ["account", "credit"]  # in time order


@pytest.mark.django_db
def test_an_order_the_service_never_saw_is_an_empty_answer(service_client):
    response = service_client.get(SAGA_URL.format(order_id=uuid.uuid4()))

    assert response.status_code == 200
    body = response.json()
    assert (body["outbox"], body["inbox"], body["records"], body["dead_letters"]["messages"]) == (
        [],
        [],
        [],
        [],
    )


@pytest.mark.django_db
def test_only_a_service_token_with_the_scope_is_let_in():
    url = SAGA_URL.format(order_id=uuid.uuid4())
    user = access_token(user_id=str(uuid.uuid4()), is_staff=True)
    no_scope = signed_service_token(scope="")
    expired = signed_service_token(lifetime_seconds=-10)
    wrong_audience = signed_service_token(aud="admin")

    assert_error(bearer_client(no_scope).get(url), 403, "insufficient_scope")
    assert_error(bearer_client(user).get(url), 401, "token_not_valid")  # staff or not: not a service
    assert_error(bearer_client(expired).get(url), 401, "token_not_valid")
    assert_error(bearer_client(wrong_audience).get(url), 401, "token_not_valid")
    response = APIClient().get(url)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_the_answer_matches_the_openapi_document(service_client, with_records):
    order_id = uuid.uuid4()
    _publish("ledger.noted", {"order_id": str(order_id)})
    inbox.handle_once("tests.consumer", lambda _event: None, _delivered({"order_id": str(order_id)}))
    document = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    body = service_client.get(SAGA_URL.format(order_id=order_id)).json()

    assert openapi_errors(document, body, path=SAGA_PATH) == []
    operation = document["paths"][SAGA_PATH]["get"]
    assert {"200", "401", "403"} <= set(operation["responses"])
    assert operation["security"] == [{"serviceAuth": []}]


# --- dead letters of the order, peeked in place -----------------------------------------------------------


def _park(broker_url: str, envelope: dict) -> str:
    """An event parked in this service's dead-letter queue as RabbitMQ parks one: with x-death."""
    message = celery_app.amqp.as_task_v2(envelope["id"], DELIVER_TASK, args=(envelope,), kwargs={})
    death = {
        "queue": f"{SERVICE}.events",
        "reason": "delivery_limit",
        "count": 1,
        "time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "exchange": "",
        "routing-keys": [f"{SERVICE}.events"],
    }
    with Connection(broker_url) as conn:
        conn.Producer(serializer="json").publish(
            message.body,
            exchange="",
            routing_key=topology.dead_letter_queue_name(SERVICE),
            headers={**message.headers, "x-death": [death]},
            serializer="json",
            delivery_mode=2,
            retry=False,
            **message.properties,
        )
    return envelope["id"]


def _queued_ids() -> list[str]:
    return [dead.id for dead in deadletters.peek(1000)]


@pytest.fixture
def parked(broker_url):
    """Park events; remove exactly those afterwards (other tests' dead letters stay)."""
    ids: list[str] = []

    def park(data: dict, correlation_id: str = "flow-dead") -> str:
        envelope = {**new_event("ledger.poisoned", data).as_envelope(), "correlation_id": correlation_id}
        ids.append(_park(broker_url, envelope))
        return ids[-1]

    yield park
    deadletters.purge(ids)


@pytest.mark.django_db
def test_the_orders_dead_letters_are_found_and_every_message_stays_in_its_place(service_client, parked):
    order_id = uuid.uuid4()
    before = _queued_ids()
    mine = parked({"order_id": str(order_id)})
    other = parked({"order_id": str(uuid.uuid4())})
    mine_again = parked({"order_id": str(order_id).upper()}, correlation_id="flow-dead-2")
    queued = _queued_ids()

    body = service_client.get(SAGA_URL.format(order_id=order_id)).json()

    found = body["dead_letters"]
    assert [(dead["id"], dead["correlation_id"]) for dead in found["messages"]] == [
        (mine, "flow-dead"),
        (mine_again, "flow-dead-2"),
    ]
    assert found["messages"][0]["reason"] == "delivery_limit"
    assert found["messages"][0]["event_type"] == "ledger.poisoned"
    assert (found["complete"], found["error"]) == (True, None)
    assert found["scanned"] == len(before) + 3
    assert _queued_ids() == queued == [*before, mine, other, mine_again]  # none lost, none reordered


@pytest.mark.django_db
def test_a_broker_that_cannot_be_read_is_reported_in_the_answer(service_client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(deadletters, "peek", unreachable)

    response = service_client.get(SAGA_URL.format(order_id=uuid.uuid4()))

    assert response.status_code == 200
    assert response.json()["dead_letters"] == {
        "messages": [],
        "scanned": 0,
        "complete": False,
        "error": "ConnectionRefusedError: broker down",
    }


# --- the service token client ---------------------------------------------------------------------------


class FakeIdentity:
    """identity's client-credentials grant, served for real over HTTP: it checks the credentials and
    issues signed service tokens (shared.testing), counting the requests and keeping their forms."""

    def __init__(self, *, secret: str = "s3cret", lifetime: int = 300, delay: float = 0.0) -> None:
        self.secret, self.lifetime, self.delay = secret, lifetime, delay
        self.forms: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                owner.forms.append(form)
                time.sleep(owner.delay)
                if self.path != "/internal/v1/oauth/token/" or form.get("client_secret") != owner.secret:
                    status, body = 401, {"error": {"code": "invalid_client", "message": "no", "fields": {}}}
                else:
                    token = signed_service_token(
                        client_id=form["client_id"],
                        scope=form.get("scope", ""),
                        lifetime_seconds=owner.lifetime,
                    )
                    status = 200
                    body = {"access_token": token, "token_type": "Bearer", "expires_in": owner.lifetime}
                    body["scope"] = form.get("scope", "")
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def identity():
    servers: list[FakeIdentity] = []

    def start(**options) -> FakeIdentity:
        servers.append(FakeIdentity(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    for key in client.scan_iter("breaker:token-test-*"):
        client.delete(key)


def _token_client(url: str, redis_client, *, secret: str = "s3cret") -> ServiceTokenClient:
    identity = ServiceClient(
        f"token-test-{uuid.uuid4()}", url, redis=redis_client, read_timeout=2.0, attempts=1
    )
    return ServiceTokenClient(identity, client_id="orders", client_secret=secret, scope="saga:read")


def test_a_token_is_asked_for_once_and_reused_until_shortly_before_it_expires(identity, redis_client):
    server = identity(lifetime=1)  # renewed half-way through a life this short
    client = _token_client(server.url, redis_client)

    first, again = client.token(), client.token()
    time.sleep(0.6)
    renewed = client.token()

    assert first == again != renewed
    assert len(server.forms) == 2
    assert server.forms[0] == {
        "grant_type": "client_credentials",
        "client_id": "orders",
        "client_secret": "s3cret",
        "scope": "saga:read",
    }


def test_concurrent_callers_share_one_request(identity, redis_client):
    server = identity(delay=0.3)
    client = _token_client(server.url, redis_client)
    tokens: list[str] = []

    threads = [threading.Thread(target=lambda: tokens.append(client.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert len(server.forms) == 1


def test_a_forgotten_token_is_asked_for_again(identity, redis_client):
    server = identity()
    client = _token_client(server.url, redis_client)

    client.token()
    client.forget()
    client.token()

    assert len(server.forms) == 2


def test_refused_credentials_and_an_unreachable_identity_say_why(identity, redis_client):
    server = identity(secret="the-right-one")
    with pytest.raises(ServiceTokenUnavailable, match="HTTP 401"):
        _token_client(server.url, redis_client, secret="wrong").token()

    server.close()
    with pytest.raises(ServiceTokenUnavailable, match="identity did not answer"):
        _token_client(server.url, redis_client).token()


@pytest.mark.django_db
def test_the_services_own_token_opens_another_services_internal_route(identity, settings):
    """settings.SERVICE_CLIENT at settings.SERVICE_URLS["identity"], as orders uses it for the timeline."""
    server = identity()
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "identity": server.url}
    settings.SERVICE_CLIENT = {"ID": "orders", "SECRET": "s3cret"}
    forget_token_clients()
    try:
        token = service_token("saga:read")
        assert service_token("saga:read") == token  # cached in the process
        response = bearer_client(token).get(SAGA_URL.format(order_id=uuid.uuid4()))
    finally:
        forget_token_clients()

    assert response.status_code == 200, response.content
    assert len(server.forms) == 1

"""Helpers for tests that watch the real system: polling and broker observers, key pairs to sign with.

Kept in the package so that every service's tests and the cross-service tests use the same ones.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Queue


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def answers_ok(session: requests.Session, url: str, timeout: float = 5.0) -> bool:
    """A 2xx from `url`; False, not an error, while nothing listens (a restarted process binding again)."""
    try:
        return session.get(url, timeout=timeout).ok
    except requests.RequestException:
        return False


def admin_sso_claims(**overrides) -> dict:
    """The claims of an admin SSO cookie as identity issues them (identity.tokens), written
    out literally: tests that forge, alter or expire cookies change what they need with `overrides`."""
    now = int(time.time())
    claims = {
        "iss": "order-platform-identity", "aud": "admin", "token_use": "admin_sso", "iat": now,
        "exp": now + 300, "jti": uuid.uuid4().hex, "user_id": str(uuid.uuid4()), "email": "x@example.com",
        "name": "X", "is_staff": True, "is_superuser": True, "ver": 1, "sid": str(uuid.uuid4()),
    }  # fmt: skip
    return claims | overrides


def park_dead_letter(
    broker_url: str,
    *,
    dead_letter_queue: str,
    died_in: str,
    task: str = "events.deliver",
    args=None,
    reason: str = "delivery_limit",
    task_id: str | None = None,
    died_at=None,
) -> str:
    """Put a Celery task message in a dead-letter queue as RabbitMQ would have: with `x-death` naming the
    queue it died in. Returns the task id (for `events.deliver`, the event's id)."""
    from datetime import UTC, datetime

    from celery import Celery

    task_id = task_id or str(uuid.uuid4())
    message = Celery(set_as_current=False).amqp.as_task_v2(task_id, task, args=args or (), kwargs={})
    death = {
        "queue": died_in, "reason": reason, "count": 1, "time": died_at or datetime.now(UTC), "exchange": "",
        "routing-keys": [died_in],
    }  # fmt: skip
    with Connection(broker_url) as connection:
        connection.Producer(serializer="json").publish(
            message.body,
            exchange="",
            routing_key=dead_letter_queue,
            headers={**message.headers, "x-death": [death]},
            serializer="json",
            delivery_mode=2,
            retry=False,
            **message.properties,
        )
    return task_id


class BrokerObserver:
    """An exclusive, auto-deleted queue bound to an exchange: receives copies of what is routed there.

    Messages are Celery task messages whose first argument is the event envelope.
    """

    def __init__(self, broker_url: str, exchange: Exchange, routing_keys: list[str]) -> None:
        self.messages: list[tuple[dict, object]] = []
        self.connection = Connection(broker_url)
        self.connection.connect()
        queue = Queue(f"observer-{uuid.uuid4()}", exclusive=True, auto_delete=True)(self.connection.channel())
        queue.declare()
        for key in routing_keys:
            queue.bind_to(exchange=exchange.name, routing_key=key)
        self.consumer = self.connection.Consumer(queue, callbacks=[self._on_message], accept=["json"])
        self.consumer.consume()

    def _on_message(self, body, message) -> None:
        self.messages.append((message.headers, body))
        message.ack()

    def envelopes(self) -> list[dict]:
        return [body[0][0] for _headers, body in self.messages]

    def event_ids(self) -> list[str]:
        return [envelope["id"] for envelope in self.envelopes()]

    def drain(self, seconds: float) -> None:
        """Receive whatever arrives during the next `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, OSError):
                self.connection.drain_events(timeout=0.05)

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[str]:
        """Receive until `count` messages arrived (or the timeout); returns the event ids seen."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            self.drain(0.1)
        return self.event_ids()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


class MetricSamples:
    """A Prometheus text exposition, parsed: `samples.value("orders_created_total")`."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = text
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def matching(self, name: str, **labels: str) -> list[tuple[dict, float]]:
        """The samples called `name` whose labels include `labels`."""
        return [
            (sample_labels, value)
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the matching samples; 0 when there is none (a counter never incremented)."""
        return sum(value for _labels, value in self.matching(name, **labels))

    def has(self, name: str, **labels: str) -> bool:
        return bool(self.matching(name, **labels))


def scrape(url: str, *, timeout: float = 5.0) -> MetricSamples:
    """GET a metrics endpoint (never through a proxy) and parse it."""
    import requests

    session = requests.Session()
    session.trust_env = False
    response = session.get(url, timeout=timeout)
    response.raise_for_status()
    return MetricSamples(response.text)


def access_token(
    *,
    user_id: str,
    email: str = "user@example.com",
    is_staff: bool = False,
    lifetime_seconds: int = 300,
    **claims,
) -> str:
    """A token exactly like identity issues, signed with the local private key: for services' tests.
    `claims` adds or replaces claims (`ver`, `sid`, ...)."""
    import jwt
    from django.conf import settings

    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + lifetime_seconds,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": str(user_id),
        "email": email,
        "is_staff": is_staff,
        "roles": ["staff"] if is_staff else ["customer"],
        "ver": 1,
        "sid": str(uuid.uuid4()),
        "iss": settings.JWT["ISSUER"],
    } | claims
    return jwt.encode(claims, _signing_key(), algorithm="RS256")


@functools.cache
def _signing_key():
    """The local private key, parsed once per test process (parsing RSA keys is slow)."""
    import environ
    from cryptography.hazmat.primitives import serialization

    from shared.auth import keys

    pem = keys.load_key_pair(environ.Env(), signs=True).private_pem
    return serialization.load_pem_private_key(pem.encode(), password=None)


# --- for each service's own test suite -------------------------------------------------------------------


def bearer_client(access: str):
    """A DRF test client sending `Authorization: Bearer <access>`."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def assert_error(response, status: int, code: str) -> dict:
    """The contract's error shape, with the expected status and code. Returns the `error` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


# --- requests at the edges: what every service's tests check (docs/security.md) ---------------------------


def deeply_nested_json(field: str = "x", depth: int = 1000) -> str:
    """A JSON object whose `field` holds `depth` nested arrays: 2 KB that once exhausted the stack."""
    return json.dumps({field: None}).replace("null", "[" * depth + "]" * depth)


def api_paths(**samples: str) -> list[str]:
    """Every route of the service's URLconf under /api/, /.well-known/ and /health/ as a concrete path:
    a converter (`<uuid:pk>`) takes `samples[name]` when given, else a sample of its type."""
    from django.urls import URLResolver, get_resolver

    def routes(patterns, prefix: str):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from routes(entry.url_patterns, route)
            else:
                yield route

    def fill(match: re.Match) -> str:
        return samples.get(match["name"]) or _SAMPLE_BY_KIND.get(match["kind"], lambda: "x")()

    return sorted(
        "/" + _CONVERTER.sub(fill, route)
        for route in routes(get_resolver().url_patterns, "")
        if route.startswith(("api/", ".well-known/", "health/"))
    )


_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")
_SAMPLE_BY_KIND = {"uuid": lambda: str(uuid.uuid4()), "int": lambda: "1"}


def options_failures(clients: dict, paths: list[str]) -> list[str]:
    """OPTIONS on every path as every client (name -> test client): the answers that were a server error,
    or an error outside the contract's shape. Empty when all is well."""
    failures = []
    for who, client in clients.items():
        client.raise_request_exception = False
        for path in paths:
            response = client.options(path)
            status = response.status_code
            if status >= 500 or (status >= 400 and set(_json_or_none(response) or {}) != {"error"}):
                failures.append(f"OPTIONS {path} as {who}: {status} {response.content[:200]!r}")
    return failures


def _json_or_none(response):
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def openapi_errors(
    document: dict, instance, *, path: str, method: str = "get", status: int = 200
) -> list[str]:
    """How `instance` (a response body) breaks the response schema that the OpenAPI 3.0 `document`
    declares for `method` `path` (a path template, "/api/v1/payments/{id}/") and `status`; empty when it
    matches. `nullable: true` is read as JSON Schema's null type, `$ref`s resolve within the document."""
    import jsonschema

    def convert(node):
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        converted = {key: convert(value) for key, value in node.items() if key != "nullable"}
        return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted

    response = document["paths"][path][method]["responses"][str(status)]
    schema = {
        "allOf": [response["content"]["application/json"]["schema"]],
        "components": document.get("components", {}),
    }
    validator = jsonschema.Draft4Validator(convert(schema))
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def assert_refusals_in_error_shape(*, client=None, json_path: str | None = None, settings=None) -> None:
    """What Django refuses outside DRF answers in the contract's shape on this service: an unknown Host
    (also as X-Forwarded-Host, as the gateway passes it), a CSRF failure on a plain Django view, an
    unknown URL; and, with `client` allowed to POST JSON to `json_path` (and pytest-django's
    `settings`), a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413)."""
    from django.test import Client

    anonymous = Client(raise_request_exception=False)
    assert_error(anonymous.get("/health/live", HTTP_HOST="evil.example"), 400, "invalid_host")
    assert_error(anonymous.get("/api/schema/", HTTP_X_FORWARDED_HOST="evil.example"), 400, "invalid_host")
    assert_error(Client(enforce_csrf_checks=True).post("/health/live"), 403, "csrf_failed")
    assert_error(anonymous.get("/no/such/path/"), 404, "not_found")
    if json_path is not None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
        body = json.dumps({"padding": "x" * 2048})
        response = client.post(json_path, data=body, content_type="application/json")
        assert_error(response, 413, "payload_too_large")


def outbox_envelopes(event_type: str | None = None) -> list[dict]:
    """The envelopes a service wrote to its outbox, oldest first (optionally of one type)."""
    from shared.messaging.models import OutboxEvent

    rows = OutboxEvent.objects.order_by("created_at")
    if event_type is not None:
        rows = rows.filter(event_type=event_type)
    return [row.envelope for row in rows]


# --- event payloads built from the contracts (shared.contracts): consumers' tests hold no hand copies ------


def event_data(
    event_type: str, version: int = 1, *, without: tuple[str, ...] = (), valid: bool = True, **overrides
) -> dict:
    """The example data of `event_type` `version` from its contract, with `overrides` set and the keys in
    `without` left out; checked against the schema (a test that wants broken data says `valid=False`)."""
    import copy

    from shared import contracts

    found = contracts.contract(event_type, version)
    if found is None:
        raise contracts.EventContractError(f"no contract declares {event_type} version {version}")
    data = {key: value for key, value in copy.deepcopy(found.example).items() if key not in without}
    data.update(overrides)
    if valid:
        contracts.check_data(event_type, version, data)
    return data


def domain_event(event_type: str, version: int = 1, **data_overrides):
    """An `Event` as a consumer receives it, its data built by `event_data` (same keyword arguments)."""
    from shared.messaging.events import new_event

    return new_event(event_type, event_data(event_type, version, **data_overrides), version=version)


def event_envelope(event_type: str, version: int = 1, **data_overrides) -> dict:
    """The envelope of `domain_event(...)`: what arrives in `events.deliver`."""
    return domain_event(event_type, version, **data_overrides).as_envelope()


@pytest.fixture(autouse=True)
def relayed_event_ids(monkeypatch):
    """Keep a service's tests off the broker: the outbox fast path records the event ids instead.

    A conftest enables it with `from shared.testing import relayed_event_ids  # noqa: F401`.
    """
    from shared.messaging import relay

    event_ids: list = []
    monkeypatch.setattr(relay, "publish_after_commit", event_ids.append)
    return event_ids


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new RSA key pair as PEM, (PKCS#8 private key, SubjectPublicKeyInfo public key): a foreign signer
    for tests that forge tokens, and the local machine's pair (devtools.keys). No service generates keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public

"""The service-to-service client: retries, circuit breaker shared through Redis, fallback."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from django.conf import settings
from prometheus_client import REGISTRY

from shared.http import DownstreamUnavailable, ServiceClient, forget_clients, service_client
from shared.redis_gate import GATE
from shared.testing import wait_until


class Downstream:
    """A real HTTP server whose answers a test scripts: 'ok', 'fail' (500), 'missing' (404), 'hang'."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.default = "ok"
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                owner.requests += 1
                mode = owner.script.pop(0) if owner.script else owner.default
                if mode == "hang":
                    time.sleep(2)
                status = {"ok": 200, "fail": 500, "missing": 404, "hang": 200}[mode]
                body = json.dumps({"mode": mode}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    yield client
    for pattern in ("breaker:test-*", "breaker:shared-*", "breaker:corr-*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


def make_client(downstream, redis_client, name=None, **options) -> ServiceClient:
    defaults = {"read_timeout": 0.5, "attempts": 1, "fail_max": 3, "reset_timeout": 1.0}
    return ServiceClient(
        name or f"test-{uuid.uuid4()}", downstream.url, redis=redis_client, **{**defaults, **options}
    )


def test_transient_failures_are_retried_for_idempotent_requests(downstream, redis_client):
    client = make_client(downstream, redis_client, attempts=3)
    downstream.script = ["fail", "fail"]

    response = client.get("/thing")

    assert response.status_code == 200
    assert downstream.requests == 3
    assert client.breaker.current_state == "closed"


def test_a_post_without_idempotency_key_is_not_retried(downstream, redis_client):
    client = make_client(downstream, redis_client, attempts=3)
    downstream.script = ["fail"]

    with pytest.raises(DownstreamUnavailable):
        client.post("/charge", json={})
    assert downstream.requests == 1


def test_a_post_with_idempotency_key_is_retried(downstream, redis_client):
    client = make_client(downstream, redis_client, attempts=3)
    downstream.script = ["fail"]

    response = client.post("/charge", json={}, headers={"Idempotency-Key": "order-1"})
    assert response.status_code == 200
    assert downstream.requests == 2


def test_client_errors_are_answers_not_failures(downstream, redis_client):
    client = make_client(downstream, redis_client, attempts=3)
    downstream.default = "missing"

    for _ in range(5):
        assert client.get("/nope").status_code == 404
    assert downstream.requests == 5  # not retried
    assert client.breaker.current_state == "closed"  # not counted against the downstream


def test_breaker_opens_after_the_configured_failures_and_fails_fast(downstream, redis_client):
    client = make_client(downstream, redis_client, fail_max=3, read_timeout=1.0)
    downstream.default = "hang"  # each call costs the full read timeout (1 s)

    for _ in range(3):
        with pytest.raises(DownstreamUnavailable):
            client.get("/slow")
    assert client.breaker.current_state == "open"
    requests_when_opened = downstream.requests

    started = time.perf_counter()
    with pytest.raises(DownstreamUnavailable, match="circuit open"):
        client.get("/slow")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.25, f"an open circuit must fail fast, took {elapsed:.3f}s (timeout is 1s)"
    assert downstream.requests == requests_when_opened  # the downstream was not even asked


def test_open_breaker_uses_the_fallback(downstream, redis_client):
    client = make_client(downstream, redis_client, fail_max=1)
    downstream.default = "fail"
    with pytest.raises(DownstreamUnavailable):
        client.get("/prices")

    answer = client.get("/prices", fallback=lambda exc: {"from": "read model", "why": type(exc).__name__})
    assert answer == {"from": "read model", "why": "CircuitBreakerError"}


def test_breaker_half_opens_after_the_reset_timeout_and_closes_on_success(downstream, redis_client):
    client = make_client(downstream, redis_client, fail_max=2, reset_timeout=0.5)
    downstream.default = "fail"
    for _ in range(2):
        with pytest.raises(DownstreamUnavailable):
            client.get("/x")
    assert client.breaker.current_state == "open"

    downstream.default = "ok"
    time.sleep(0.6)
    assert client.get("/x").status_code == 200  # the trial call in half-open state succeeded
    assert client.breaker.current_state == "closed"


def test_a_failed_trial_call_opens_the_breaker_again(downstream, redis_client):
    client = make_client(downstream, redis_client, fail_max=2, reset_timeout=0.5)
    downstream.default = "fail"
    for _ in range(2):
        with pytest.raises(DownstreamUnavailable):
            client.get("/x")
    time.sleep(0.6)
    with pytest.raises(DownstreamUnavailable):
        client.get("/x")
    assert client.breaker.current_state == "open"


PEER = """
import sys, time, redis
from shared.http import ServiceClient, DownstreamUnavailable
name, url, redis_url = sys.argv[1:4]
client = ServiceClient(name, url, redis=redis.Redis.from_url(redis_url), read_timeout=1.0, attempts=1,
                       fail_max=3, reset_timeout=30)
started = time.perf_counter()
try:
    client.get("/from-peer")
    print("called", client.breaker.current_state)
except DownstreamUnavailable as exc:
    print("refused", client.breaker.current_state, round(time.perf_counter() - started, 3), exc.reason)
"""


def test_two_processes_share_the_breaker_state_through_redis(downstream, redis_client):
    name = f"shared-{uuid.uuid4()}"
    client = make_client(downstream, redis_client, name=name, fail_max=3, reset_timeout=30)
    downstream.default = "fail"
    for _ in range(3):
        with pytest.raises(DownstreamUnavailable):
            client.get("/x")
    assert client.breaker.current_state == "open"
    requests_before = downstream.requests

    redis_url = settings.CACHES["default"]["LOCATION"]
    peer = subprocess.run(
        [sys.executable, "-c", PEER, name, downstream.url, redis_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    verdict, state, seconds, reason = peer.stdout.split(maxsplit=3)
    assert (verdict, state, reason.strip()) == ("refused", "open", "circuit open"), peer.stderr
    assert float(seconds) < 0.25  # the peer's read timeout is 1 s: it did not wait for the downstream
    assert downstream.requests == requests_before

    # And the other way round: the breaker state is one, whoever closes it.
    client.breaker.close()
    downstream.default = "ok"
    peer = subprocess.run(
        [sys.executable, "-c", PEER, name, downstream.url, redis_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert peer.stdout.split()[:2] == ["called", "closed"], peer.stderr


def test_correlation_id_is_sent_downstream(redis_client):
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen["request_id"] = self.headers.get("X-Request-ID")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from shared.observability import context

        client = ServiceClient(
            f"corr-{uuid.uuid4()}", f"http://127.0.0.1:{server.server_address[1]}", redis=redis_client
        )
        with context.bound(correlation_id="journey-42"):
            client.get("/")
        assert seen["request_id"] == "journey-42"
    finally:
        server.shutdown()


# Redis hung: the breaker's shared state is waited on once, then skipped (shared.redis_gate)


@contextlib.contextmanager
def redis_hung(redis_client, seconds: float):
    """The real Redis accepts connections and answers no command (CLIENT PAUSE ALL), as when it hangs.
    CLIENT UNPAUSE would wait out the pause too (Redis 7 pauses it with the rest): the block ends when
    Redis answers again."""
    redis_client.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
    try:
        yield
    finally:
        wait_until(lambda: _answers(redis_client), timeout=seconds + 10, message="Redis answering again")


def _answers(redis_client) -> bool:
    try:
        return redis_client.ping()
    except redis.exceptions.RedisError:
        return False


def test_a_hung_redis_costs_one_timeout_then_every_call_skips_it_and_still_goes_through(
    downstream, redis_client, caplog
):
    GATE.reset()
    client = service_client(f"test-{uuid.uuid4()}", downstream.url, attempts=1)  # as services make them
    skipped_before = REGISTRY.get_sample_value("redis_calls_skipped_total") or 0.0

    with redis_hung(redis_client, seconds=3), caplog.at_level("WARNING", logger="shared.redis_gate"):
        answers = [client.get("/thing").status_code for _ in range(10)]

    assert answers == [200] * 10  # the downstream was called every time: the breaker fell back to closed
    assert downstream.requests == 10
    outages = [r for r in caplog.records if r.message.startswith("Redis unavailable")]
    assert len(outages) == 1  # one timeout paid; every later Redis call was skipped at once
    assert (REGISTRY.get_sample_value("redis_calls_skipped_total") or 0.0) - skipped_before >= 10
    with redis_hung(redis_client, seconds=3):  # a process whose first call comes during the outage
        created_during = service_client(f"test-{uuid.uuid4()}", downstream.url, attempts=1)
        assert created_during.get("/thing").status_code == 200
    GATE.reset()
    assert client.get("/thing").status_code == 200  # Redis answers again: used again
    assert redis_client.get(f"breaker:{client.name}:pybreaker:state") is not None
    forget_clients()

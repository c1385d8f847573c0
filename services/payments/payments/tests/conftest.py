"""Fixtures: the real payment-provider sandbox over HTTP, queued tasks, events, API clients.

The sandbox (sandbox/payment_provider) is served by wsgiref in a thread on a random port, on a random
Redis prefix, and `settings.SERVICE_URLS["payment_provider"]` points at it: payments talks real HTTP
through the shared breaker-wrapped client. Each test starts with a wiped sandbox and a closed breaker.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.db import transaction
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from payments import clients, services
from payments import tasks as task_functions
from payments.tests.helpers import OTHER_USER_ID, STAFF_ID, USER_ID
from shared import http
from shared.messaging import relay
from shared.testing import access_token, wait_until

REPO_ROOT = Path(__file__).resolve().parents[4]


def _sandbox_server_module():
    """The sandbox lives at the repository root, outside this service's import path."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    return importlib.import_module("sandbox.payment_provider.server")


class Provider:
    """A test's handle on the sandbox: fault knobs and what really happened there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=10, **kwargs)

    def reset(self) -> None:
        assert self._call("POST", "/_sandbox/reset").status_code == 200

    def set_faults(self, **knobs) -> None:
        assert self._call("PUT", "/_sandbox/faults", json=knobs).status_code == 200

    def clear_faults(self) -> None:
        assert self._call("DELETE", "/_sandbox/faults").status_code == 200

    def ledger(self) -> dict:
        return self._call("GET", "/v1/ledger").json()

    def requests_received(self) -> int:
        return self._call("GET", "/_sandbox/stats").json()["requests"]

    def wait_until_idle(self) -> None:
        """A request a test gave up on still completes at the provider: let it land before the next test."""
        wait_until(
            lambda: self._call("GET", "/_sandbox/stats").json()["in_flight"] == 0,
            timeout=10,
            message="the sandbox to finish the requests in flight",
        )

    def charges_for(self, order_id) -> list[dict]:
        """Every charge made under the order's key (read with the knobs off: the lookup is /v1)."""
        response = self._call(
            "GET", "/v1/charges", params={"description": clients.charge_description(order_id)}
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def refunds_of(self, charge_id: str) -> list[dict]:
        response = self._call("GET", "/v1/refunds", params={"charge": charge_id})
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="session")
def provider_server():
    server = _sandbox_server_module().start_in_thread(prefix=f"provider-test-{uuid.uuid4().hex}")
    yield server
    server.stop()


def _reset_breaker() -> None:
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"breaker:{clients.PROVIDER}*"))
    if keys:
        redis.delete(*keys)
    # The process-wide client keeps the timeouts it was built with: rebuild it with this test's settings.
    http.forget_clients()


@pytest.fixture(autouse=True)
def provider(provider_server, settings):
    """A wiped sandbox and a closed breaker; fast timeouts so that failure tests stay quick."""
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, clients.PROVIDER: provider_server.url}
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    settings.PROVIDER_BREAKER_RESET_SECONDS = 5
    handle = Provider(provider_server.url)
    handle.reset()
    _reset_breaker()
    yield handle
    handle.wait_until_idle()
    _reset_breaker()


@pytest.fixture
def reset_breaker():
    return _reset_breaker


@pytest.fixture(autouse=True)
def relayed_event_ids(monkeypatch):
    """The outbox fast path would publish to the local broker after commit; record the ids instead."""
    event_ids: list = []
    monkeypatch.setattr(relay, "publish_after_commit", event_ids.append)
    return event_ids


# The tasks services queue, by the contract names they are sent by (services send tasks by name).
TASKS = {task.name: task for task in (task_functions.payment_charge, task_functions.payment_refund)}


class TaskQueue:
    """Stands in for the broker: records the tasks queued after commit; `run_all` runs them here."""

    def __init__(self, capture_on_commit) -> None:
        self.queued: list[tuple[str, tuple]] = []
        self.capture_on_commit = capture_on_commit

    def record(self, task_name: str, *args) -> None:
        assert task_name in TASKS, f"no payments task is named {task_name!r}"
        transaction.on_commit(lambda: self.queued.append((task_name, args)))

    def names(self) -> list[tuple[str, tuple]]:
        return list(self.queued)

    def run_all(self) -> int:
        """Run every queued task (and what they queue in turn), oldest first; returns how many ran."""
        ran = 0
        while self.queued:
            task_name, args = self.queued.pop(0)
            with self.capture_on_commit(execute=True):
                TASKS[task_name](*args)
            ran += 1
        return ran


@pytest.fixture(autouse=True)
def tasks(monkeypatch, django_capture_on_commit_callbacks):
    queue = TaskQueue(django_capture_on_commit_callbacks)
    monkeypatch.setattr(services, "run_task_after_commit", queue.record)
    return queue


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs the on-commit callbacks (queued tasks, relay) of what it wraps."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def bearer(user_id: str, *, is_staff: bool = False) -> APIClient:
    client = APIClient()
    token = access_token(user_id=user_id, email=f"{user_id[:8]}@example.com", is_staff=is_staff)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def customer_client():
    return bearer(USER_ID)


@pytest.fixture
def other_client():
    return bearer(OTHER_USER_ID)


@pytest.fixture
def staff_client():
    return bearer(STAFF_ID, is_staff=True)

"""A real sandbox per test: the WSGI app served over HTTP on a random port, on its own Redis prefix."""

from __future__ import annotations

import uuid

import pytest
import requests

from sandbox.payment_provider.server import BackgroundServer, start_in_thread


class Provider:
    """A test's handle on one sandbox: HTTP helpers over a real socket."""

    def __init__(self, server: BackgroundServer) -> None:
        self.server = server
        self.url = server.url
        self.http = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, self.url + path, **kwargs)

    def charge(self, key: str | None, *, amount="12.50", source="tok_visa", **fields) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        body = {"amount": amount, "currency": "USD", "source": source, **fields}
        return self.request("POST", "/v1/charges", json=body, headers=headers)

    def refund(self, key: str | None, charge_id: str, **fields) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.request("POST", "/v1/refunds", json={"charge": charge_id, **fields}, headers=headers)

    def set_faults(self, **knobs) -> dict:
        response = self.request("PUT", "/_sandbox/faults", json=knobs)
        assert response.status_code == 200, response.text
        return response.json()

    def ledger(self) -> dict:
        return self.request("GET", "/v1/ledger").json()

    def stats(self) -> dict:
        return self.request("GET", "/_sandbox/stats").json()


@pytest.fixture
def prefix() -> str:
    return f"provider-test-{uuid.uuid4().hex}"


@pytest.fixture
def provider(prefix):
    server = start_in_thread(prefix=prefix)
    yield Provider(server)
    server.stop()


def assert_error(response: requests.Response, status: int, error_type: str, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert error["message"]
    return error

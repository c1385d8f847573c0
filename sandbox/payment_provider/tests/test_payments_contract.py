"""Provider side of payments -> payment provider: the committed pact replayed against the real sandbox.

contracts/pacts/payments-payment_provider.json is what payments' tests recorded of the charges, charge
lookups and refunds it sends. pact's Verifier sends each request to a sandbox served over HTTP (the
`provider` fixture) after setting up the provider state it names through the sandbox's own API: the
earlier request a replay or a 409 is about, a captured or refunded charge. Every state is wiped after
its interaction, so no interaction sees another's charges.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from sandbox.payment_provider import app
from shared.pacts import ContractBroken, verify_pact

IN_FLIGHT_LATENCY_MS = 1000  # long enough for pact's request to arrive while the first one still runs


def wipe(provider) -> None:
    assert provider.request("POST", "/_sandbox/reset").status_code == 200


def send(provider, path: str, key: str, body: dict) -> requests.Response:
    # A session of its own: the in-flight state sends from a second thread.
    return requests.post(provider.url + path, json=body, headers={"Idempotency-Key": key}, timeout=10)


def charge_made(provider):
    def handler(action: str, parameters: dict) -> None:
        if action == "teardown":
            wipe(provider)
            return
        response = send(provider, parameters["path"], parameters["idempotency_key"], parameters["body"])
        assert response.status_code in (200, 402), response.text

    return handler


def request_in_flight(provider):
    """The same request, sent earlier and still being processed (slowed by the latency knob)."""
    running: list[threading.Thread] = []

    def handler(action: str, parameters: dict) -> None:
        if action == "teardown":
            for thread in running:
                thread.join(timeout=10)
            running.clear()
            wipe(provider)
            return
        provider.set_faults(latency_ms=IN_FLIGHT_LATENCY_MS)
        earlier = threading.Thread(
            target=send,
            args=(provider, parameters["path"], parameters["idempotency_key"], parameters["body"]),
        )
        earlier.start()
        running.append(earlier)
        _wait_until_in_flight(provider)
        provider.request("DELETE", "/_sandbox/faults")  # pact's own request must not be slowed

    return handler


def _wait_until_in_flight(provider) -> None:
    for _ in range(200):
        if provider.stats()["in_flight"] == 1:
            return
        time.sleep(0.01)
    raise AssertionError("the earlier request never reached the sandbox")


def captured_charge(provider, *, refunded: bool = False):
    def handler(action: str, parameters: dict) -> None:
        if action == "teardown":
            wipe(provider)
            return
        charge_id = parameters["charge_id"]
        made = provider.charge(f"pact-state-{charge_id}", amount=parameters["amount"]).json()
        _rename_charge(provider.server.app.store, made, charge_id)
        if refunded:
            response = provider.refund(f"pact-state-refund-{charge_id}", charge_id)
            assert response.status_code == 200, response.text

    return handler


def _rename_charge(store: app.Store, made: dict, charge_id: str) -> None:
    """The API names charges at random; the pact names the charge to refund: give it that name."""
    store.redis.delete(store.key("charge", made["id"]))
    store.redis.set(store.key("charge", charge_id), json.dumps({**made, "id": charge_id}))
    store.redis.lrem(store.key("charges"), 0, made["id"])
    store.redis.rpush(store.key("charges"), charge_id)


def verify(provider) -> None:
    verify_pact(
        consumer="payments",
        provider="payment_provider",
        url=provider.url,
        states={
            "a charge was made with this idempotency key": charge_made(provider),
            "a request with this idempotency key is in flight": request_in_flight(provider),
            "a captured charge exists": captured_charge(provider),
            "a fully refunded charge exists": captured_charge(provider, refunded=True),
        },
    )


def test_the_sandbox_answers_what_payments_expects(provider):
    verify(provider)


def test_a_sandbox_that_no_longer_declines_the_decline_card_fails_with_pact_report(provider, monkeypatch):
    # The break payments would suffer silently: the decline test card answered as an unknown token
    # (400) rather than as a card declined (402).
    monkeypatch.setattr(app, "KNOWN_TOKENS", frozenset({app.SUCCESS_TOKEN}))

    with pytest.raises(ContractBroken) as broken:
        verify(provider)

    report = str(broken.value)
    assert "a charge of a card that declines" in report
    assert "expected 402 but was 400" in report

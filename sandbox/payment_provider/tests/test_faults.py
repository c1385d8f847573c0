"""The fault knobs: HTTP 500s, a failure budget, latency, hangs; stored in Redis, shared by workers."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.payment_provider.server import start_in_thread
from sandbox.payment_provider.tests.conftest import Provider, assert_error

DEFAULTS = {"latency_ms": 0, "error_rate": 0.0, "hang_rate": 0.0, "hang_seconds": 30.0, "failure_budget": 0}


def test_no_faults_by_default(provider):
    assert provider.request("GET", "/_sandbox/faults").json() == DEFAULTS


def test_error_rate_one_answers_500_and_does_nothing(provider):
    provider.set_faults(error_rate=1)

    responses = [provider.charge("order-1-charge") for _ in range(3)]

    for response in responses:
        assert_error(response, 500, "api_error", "sandbox_fault")
    provider.request("DELETE", "/_sandbox/faults")
    assert provider.ledger()["charges"] == 0
    # The failed requests never reserved the key: the same request now goes through.
    retried = provider.charge("order-1-charge")
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_failure_budget_fails_exactly_the_next_n_requests(provider):
    provider.set_faults(failure_budget=2)

    statuses = [provider.charge("order-2-charge").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert provider.request("GET", "/_sandbox/faults").json()["failure_budget"] == 0
    assert provider.stats() == {"requests": 3, "faulted": 2, "in_flight": 0}
    assert provider.ledger()["charges"] == 1


def test_latency_delays_the_answer(provider):
    provider.set_faults(latency_ms=300)

    started = time.perf_counter()
    response = provider.charge("order-3-charge")

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_a_hang_sleeps_then_answers_500_without_charging(provider):
    provider.set_faults(hang_rate=1, hang_seconds=0.3)

    started = time.perf_counter()
    response = provider.charge("order-4-charge")

    assert_error(response, 500, "api_error", "sandbox_fault")
    assert time.perf_counter() - started >= 0.3
    assert provider.ledger()["charges"] == 0


def test_a_client_that_times_out_still_leaves_exactly_one_charge(provider):
    """The request the client gave up on completes at the provider; the retry gets its answer."""
    provider.set_faults(latency_ms=400)
    with pytest.raises(requests.ReadTimeout):
        provider.request(
            "POST",
            "/v1/charges",
            json={"amount": "12.50", "currency": "USD", "source": "tok_visa"},
            headers={"Idempotency-Key": "order-5-charge"},
            timeout=0.1,
        )

    in_flight = provider.charge("order-5-charge")
    assert_error(in_flight, 409, "idempotency_error", "idempotency_key_in_use")
    assert provider.stats()["in_flight"] == 1
    deadline = time.monotonic() + 5
    while provider.ledger()["charges"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    provider.request("DELETE", "/_sandbox/faults")

    replayed = provider.charge("order-5-charge")
    assert replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert provider.ledger()["charges"] == 1


def test_faults_hit_the_card_processing_calls_only(provider):
    """Reads stay answerable while the provider is "down": tests and reconciliation can ask what happened."""
    charge = provider.charge("order-8-charge").json()
    provider.set_faults(error_rate=1)

    assert provider.charge("order-9-charge").status_code == 500
    assert provider.refund("order-8-refund", charge["id"]).status_code == 500
    assert (
        provider.request("GET", "/v1/charges", params={"idempotency_key": "order-8-charge"}).status_code
        == 200
    )
    assert provider.request("GET", f"/v1/charges/{charge['id']}").status_code == 200
    assert provider.request("GET", "/v1/refunds").status_code == 200
    assert provider.request("GET", "/v1/ledger").status_code == 200
    assert provider.request("GET", "/health/live").status_code == 200
    assert provider.request("GET", "/_sandbox/faults").status_code == 200
    assert provider.stats() == {"requests": 6, "faulted": 2, "in_flight": 0}


def test_a_failure_budget_is_spent_by_card_processing_calls_only(provider):
    provider.set_faults(failure_budget=1)

    provider.request("GET", "/v1/charges")
    provider.request("GET", "/v1/ledger")

    assert provider.charge("order-10-charge").status_code == 500
    assert provider.charge("order-10-charge").status_code == 200


def test_put_replaces_every_knob_and_delete_resets(provider):
    provider.set_faults(latency_ms=50, error_rate=0.5)

    replaced = provider.set_faults(hang_rate=0.25, hang_seconds=2)
    assert replaced == {**DEFAULTS, "hang_rate": 0.25, "hang_seconds": 2}

    assert provider.request("DELETE", "/_sandbox/faults").json() == DEFAULTS


@pytest.mark.parametrize(
    "knobs",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"hang_rate": "often"},
        {"latency_ms": 1.5},
        {"latency_ms": -1},
        {"failure_budget": True},
        {"surprise": 1},
    ],
)
def test_invalid_knobs_are_400_and_change_nothing(provider, knobs):
    provider.set_faults(latency_ms=10)

    response = provider.request("PUT", "/_sandbox/faults", json=knobs)

    assert response.status_code == 400
    assert provider.request("GET", "/_sandbox/faults").json()["latency_ms"] == 10


def test_two_processes_on_one_prefix_share_knobs_charges_and_keys(provider, prefix):
    """Workers agree because everything lives in Redis: a second server on the same prefix."""
    other = start_in_thread(prefix=prefix)
    try:
        peer = Provider(other)
        first = provider.charge("order-6-charge")
        provider.set_faults(failure_budget=1)

        assert peer.charge("order-6-charge").status_code == 500  # the knob set through the first one
        replayed = peer.charge("order-6-charge")
        assert replayed.json()["id"] == first.json()["id"]
        assert peer.ledger()["charges"] == 1
    finally:
        other.stop(wipe=False)


def test_the_lookup_by_key_answers_409_while_that_key_is_in_flight(provider):
    provider.set_faults(latency_ms=400)
    with pytest.raises(requests.ReadTimeout):
        provider.request(
            "POST",
            "/v1/charges",
            json={"amount": "12.50", "currency": "USD", "source": "tok_visa"},
            headers={"Idempotency-Key": "order-7-charge"},
            timeout=0.1,
        )
    provider.request("DELETE", "/_sandbox/faults")

    in_flight = provider.request("GET", "/v1/charges", params={"idempotency_key": "order-7-charge"})
    assert_error(in_flight, 409, "idempotency_error", "idempotency_key_in_use")
    deadline = time.monotonic() + 5
    while provider.ledger()["charges"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    done = provider.request("GET", "/v1/charges", params={"idempotency_key": "order-7-charge"})
    assert done.status_code == 200
    assert [charge["status"] for charge in done.json()["data"]] == ["succeeded"]
    unknown = provider.request("GET", "/v1/charges", params={"idempotency_key": "never-used"})
    assert unknown.json()["count"] == 0

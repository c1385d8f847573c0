"""Charges: test tokens, validation, idempotency (sequential and concurrent), listing, the ledger."""

from __future__ import annotations

import threading

import pytest

from sandbox.payment_provider.tests.conftest import assert_error


def test_tok_visa_is_captured(provider):
    response = provider.charge("order-1-charge", amount="12.50", description="order 1")

    assert response.status_code == 200
    charge = response.json()
    assert charge["id"].startswith("ch_")
    assert (charge["status"], charge["captured"], charge["amount"], charge["currency"]) == (
        "succeeded",
        True,
        "12.50",
        "USD",
    )
    assert charge["description"] == "order 1"
    assert provider.request("GET", f"/v1/charges/{charge['id']}").json() == charge
    assert provider.ledger() == {
        "charges": 1,
        "declined": 0,
        "refunds": 0,
        "captured_total": "12.50",
        "refunded_total": "0.00",
    }


def test_tok_charge_declined_is_402_card_declined(provider):
    response = provider.charge("order-2-charge", source="tok_chargeDeclined")

    error = assert_error(response, 402, "card_error", "card_declined")
    failed = provider.request("GET", f"/v1/charges/{error['charge']}").json()
    assert (failed["status"], failed["captured"]) == ("failed", False)
    assert provider.ledger()["charges"] == 0
    assert provider.ledger()["declined"] == 1
    assert provider.ledger()["captured_total"] == "0.00"


def test_an_unknown_token_is_400_and_charges_nothing(provider):
    assert_error(provider.charge("k", source="tok_unknown"), 400, "invalid_request_error", "resource_missing")

    assert provider.ledger()["charges"] == 0
    assert provider.request("GET", "/v1/charges").json()["data"] == []


def test_the_idempotency_key_is_required(provider):
    assert_error(provider.charge(None), 400, "invalid_request_error", "idempotency_key_missing")
    assert provider.ledger()["charges"] == 0


@pytest.mark.parametrize("amount", ["0", "-1.00", "12.345", "abc", "", None, True, "1e400", "10000000000.00"])
def test_invalid_amounts_are_400(provider, amount):
    response = provider.charge("k", amount=amount)

    assert_error(response, 400, "invalid_request_error", "parameter_invalid")


def test_malformed_json_and_a_non_object_body_are_400(provider):
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    deeply_nested = b'{"amount": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # was a 500 (RecursionError)
    for body in (b"{not json", b"[1, 2]", deeply_nested):
        response = provider.request("POST", "/v1/charges", data=body, headers=headers)
        assert_error(response, 400, "invalid_request_error", "malformed_json")


def test_a_missing_currency_or_source_is_400(provider):
    headers = {"Idempotency-Key": "k"}
    no_currency = provider.request(
        "POST", "/v1/charges", json={"amount": "1.00", "source": "tok_visa"}, headers=headers
    )
    no_source = provider.request(
        "POST", "/v1/charges", json={"amount": "1.00", "currency": "USD"}, headers=headers
    )

    assert_error(no_currency, 400, "invalid_request_error", "parameter_invalid")
    assert_error(no_source, 400, "invalid_request_error", "parameter_missing")


def test_unknown_paths_and_methods(provider):
    assert provider.request("GET", "/v2/charges").status_code == 404
    assert provider.request("DELETE", "/v1/charges").status_code == 405
    assert_error(
        provider.request("GET", "/v1/charges/ch_nope"), 404, "invalid_request_error", "resource_missing"
    )


# Idempotency


def test_the_same_key_twice_returns_the_stored_answer_and_charges_once(provider):
    first = provider.charge("order-3-charge")
    second = provider.charge("order-3-charge")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert provider.ledger()["charges"] == 1
    listed = provider.request("GET", "/v1/charges", params={"idempotency_key": "order-3-charge"}).json()
    assert [charge["id"] for charge in listed["data"]] == [first.json()["id"]]


def test_a_declined_answer_is_replayed_too(provider):
    first = provider.charge("order-4-charge", source="tok_chargeDeclined")
    second = provider.charge("order-4-charge", source="tok_chargeDeclined")

    assert (first.status_code, second.status_code) == (402, 402)
    assert second.json() == first.json()
    assert provider.ledger()["declined"] == 1


def test_the_same_key_with_another_body_is_an_idempotency_error(provider):
    provider.charge("order-5-charge", amount="12.50")

    response = provider.charge("order-5-charge", amount="99.00")

    assert_error(response, 400, "idempotency_error", "idempotency_key_reused")
    assert provider.ledger() == {**provider.ledger(), "charges": 1, "captured_total": "12.50"}


def test_a_request_refused_by_validation_does_not_use_up_its_key(provider):
    assert provider.charge("order-6-charge", amount="-1").status_code == 400

    assert provider.charge("order-6-charge", amount="5.00").status_code == 200


def test_concurrent_requests_with_one_key_create_one_charge(provider):
    provider.set_faults(latency_ms=300)  # the first request holds the key while the others arrive
    results: list = []
    start = threading.Barrier(6)

    def send():
        start.wait()
        results.append(provider.charge("order-7-charge"))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(response.status_code for response in results)
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) >= 1
    assert statuses.count(409) >= 1
    for response in results:
        if response.status_code == 409:
            assert_error(response, 409, "idempotency_error", "idempotency_key_in_use")
    assert len({response.json()["id"] for response in results if response.status_code == 200}) == 1
    assert provider.ledger()["charges"] == 1
    assert provider.charge("order-7-charge").status_code == 200  # once done, the answer is replayed
    assert provider.ledger()["charges"] == 1


def test_keys_are_independent(provider):
    first = provider.charge("order-8-charge").json()
    second = provider.charge("order-9-charge").json()

    assert first["id"] != second["id"]
    assert provider.ledger()["charges"] == 2
    assert provider.ledger()["captured_total"] == "25.00"


# Listing and the ledger


def test_charges_are_listed_by_description_and_by_key(provider):
    provider.charge("order-a-charge", description="order a")
    provider.charge("order-b-charge", description="order b", source="tok_chargeDeclined")
    provider.charge("order-b-retry", description="order b")

    by_description = provider.request("GET", "/v1/charges", params={"description": "order b"}).json()
    by_key = provider.request("GET", "/v1/charges", params={"idempotency_key": "order-a-charge"}).json()
    everything = provider.request("GET", "/v1/charges").json()

    assert [charge["status"] for charge in by_description["data"]] == ["failed", "succeeded"]
    assert by_description["count"] == 2
    assert [charge["description"] for charge in by_key["data"]] == ["order a"]
    assert everything["count"] == 3


def test_the_ledger_adds_up_charges_and_refunds(provider):
    first = provider.charge("c1", amount="10.00").json()
    provider.charge("c2", amount="2.50")
    provider.charge("c3", amount="7.00", source="tok_chargeDeclined")
    provider.refund("r1", first["id"], amount="4.00")

    assert provider.ledger() == {
        "charges": 2,
        "declined": 1,
        "refunds": 1,
        "captured_total": "12.50",
        "refunded_total": "4.00",
    }


def test_reset_wipes_the_sandbox(provider):
    provider.charge("c1")
    provider.set_faults(latency_ms=5)

    response = provider.request("POST", "/_sandbox/reset")

    assert response.status_code == 200
    assert response.json()["deleted_keys"] > 0
    assert provider.ledger()["charges"] == 0
    assert provider.request("GET", "/v1/charges").json()["count"] == 0
    assert provider.request("GET", "/_sandbox/faults").json()["latency_ms"] == 0
    assert provider.charge("c1").headers.get("Idempotent-Replayed") is None  # keys forgotten too


def test_health_live_and_ready(provider):
    assert provider.request("GET", "/health/live").json() == {"status": "healthy"}
    assert provider.request("GET", "/health/ready").json() == {"status": "healthy"}

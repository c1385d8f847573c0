"""Refunds: full and partial, never more than captured, idempotent, safe under concurrency."""

from __future__ import annotations

import threading

from sandbox.payment_provider.tests.conftest import assert_error


def captured_charge(provider, amount="12.50") -> dict:
    response = provider.charge(f"charge-{amount}", amount=amount)
    assert response.status_code == 200
    return response.json()


def test_a_refund_without_amount_returns_everything(provider):
    charge = captured_charge(provider)

    response = provider.refund("order-1-refund", charge["id"])

    assert response.status_code == 200
    refund = response.json()
    assert refund["id"].startswith("re_")
    assert (refund["status"], refund["charge"], refund["amount"]) == ("succeeded", charge["id"], "12.50")
    updated = provider.request("GET", f"/v1/charges/{charge['id']}").json()
    assert (updated["amount_refunded"], updated["refunded"]) == ("12.50", True)
    assert provider.ledger()["refunded_total"] == "12.50"


def test_partial_refunds_add_up_and_never_exceed_the_capture(provider):
    charge = captured_charge(provider, amount="10.00")

    assert provider.refund("r1", charge["id"], amount="6.00").status_code == 200
    too_much = provider.refund("r2", charge["id"], amount="4.01")
    rest = provider.refund("r3", charge["id"], amount="4.00")
    nothing_left = provider.refund("r4", charge["id"])

    assert_error(too_much, 400, "invalid_request_error", "amount_too_large")
    assert rest.status_code == 200
    assert_error(nothing_left, 400, "invalid_request_error", "charge_already_refunded")
    assert provider.ledger()["refunded_total"] == "10.00"
    assert provider.ledger()["refunds"] == 2


def test_the_same_refund_key_refunds_once(provider):
    charge = captured_charge(provider)

    first = provider.refund("order-2-refund", charge["id"])
    second = provider.refund("order-2-refund", charge["id"])

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert provider.ledger()["refunds"] == 1
    listed = provider.request("GET", "/v1/refunds", params={"charge": charge["id"]}).json()
    assert listed["count"] == 1


def test_refunding_an_unknown_or_declined_charge_is_400(provider):
    declined = provider.charge("declined", source="tok_chargeDeclined").json()["error"]["charge"]

    assert_error(provider.refund("r1", "ch_unknown"), 400, "invalid_request_error", "resource_missing")
    assert_error(provider.refund("r2", declined), 400, "invalid_request_error", "charge_not_captured")
    assert_error(provider.refund(None, declined), 400, "invalid_request_error", "idempotency_key_missing")
    assert provider.ledger()["refunds"] == 0


def test_concurrent_full_refunds_under_different_keys_refund_once(provider):
    charge = captured_charge(provider)
    results: list = []
    start = threading.Barrier(5)

    def send(number: int):
        start.wait()
        results.append(provider.refund(f"refund-{number}", charge["id"]))

    threads = [threading.Thread(target=send, args=(number,)) for number in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(response.status_code for response in results) == [200, 400, 400, 400, 400]
    assert provider.ledger()["refunded_total"] == "12.50"
    assert provider.ledger()["refunds"] == 1

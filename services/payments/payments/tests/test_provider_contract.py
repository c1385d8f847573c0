"""Consumer side of payments -> payment provider: payments' real client against pact's mock server.

Each test states one answer of the provider, drives `payments.clients` against it and asserts what the
client hands back to payments' services (which branch on status, charge/refund id and error message).
A full run of this module rewrites contracts/pacts/payments-payment_provider.json, which the sandbox's
tests replay against the real sandbox. payments' other tests use the real sandbox, not a fake: the
sandbox is what the pact is verified against, so there is no stand-in left to check.
"""

from __future__ import annotations

from functools import partial

import pytest
from pact import match

from payments import clients
from payments.tests import provider_contract as contract
from shared.pacts import PactRecorder

JSON = "application/json"


@pytest.fixture(scope="module")
def recorder():
    recorder = PactRecorder(contract.CONSUMER, contract.PROVIDER, expected=contract.INTERACTIONS)
    yield recorder
    recorder.publish()


@pytest.fixture
def serve(recorder, settings):
    """`with serve(pact):` payments' provider client talks to pact's mock server; the pact is recorded."""
    return partial(recorder.serving, settings=settings, downstream=clients.PROVIDER)


def charge(description: str, token: str) -> clients.ProviderAnswer:
    return clients.create_charge(
        order_id=contract.order_id_for(description), amount=contract.AMOUNT, currency="USD", token=token
    )


def refund(description: str) -> clients.ProviderAnswer:
    return clients.create_refund(
        order_id=contract.order_id_for(description), charge_id=contract.CHARGE_ID, amount=contract.AMOUNT
    )


def in_flight_state(path: str, key: str, body: dict) -> tuple[str, dict]:
    return contract.REQUEST_IN_FLIGHT, contract.request_state(path, key, body)


# POST /v1/charges


def test_a_card_that_pays_is_captured_under_a_charge_id(recorder, serve):
    pact = recorder.pact()
    contract.charge_request(pact, contract.CHARGE_PAYS, "tok_visa").will_respond_with(200).with_body(
        contract.charge_like(), content_type=JSON
    )

    with serve(pact):
        answer = charge(contract.CHARGE_PAYS, "tok_visa")

    assert answer.status_code == 200
    assert answer.body["id"] == "ch_3f9a1c0b2d4e5f6a7b8c9d0e"


def test_a_card_that_declines_is_a_402_card_error_with_a_message(recorder, serve):
    pact = recorder.pact()
    contract.charge_request(pact, contract.CHARGE_DECLINES, "tok_chargeDeclined").will_respond_with(
        402
    ).with_body(contract.error_like("card_error", "card_declined"), content_type=JSON)

    with serve(pact):
        answer = charge(contract.CHARGE_DECLINES, "tok_chargeDeclined")

    assert (answer.status_code, answer.error_code) == (402, "card_declined")
    assert answer.error_message == "What went wrong."


def test_a_token_the_provider_does_not_know_is_a_400(recorder, serve):
    pact = recorder.pact()
    contract.charge_request(pact, contract.CHARGE_UNKNOWN_TOKEN, "tok_unknown").will_respond_with(
        400
    ).with_body(contract.error_like("invalid_request_error", "resource_missing"), content_type=JSON)

    with serve(pact):
        answer = charge(contract.CHARGE_UNKNOWN_TOKEN, "tok_unknown")

    # payments declines the payment on a 400 too (and logs the code): the token will never pay.
    assert (answer.status_code, answer.error_code) == (400, "resource_missing")


def test_a_repeated_charge_gets_the_first_answer_replayed(recorder, serve):
    order_id = contract.order_id_for(contract.CHARGE_REPLAYED)
    earlier = contract.request_state(
        "/v1/charges", clients.charge_key(order_id), contract.charge_body(order_id, "tok_visa")
    )
    pact = recorder.pact()
    (
        contract.charge_request(pact, contract.CHARGE_REPLAYED, "tok_visa")
        .given(contract.CHARGE_MADE, earlier)
        .will_respond_with(200)
        .with_header("Idempotent-Replayed", "true")
        .with_body(contract.charge_like(), content_type=JSON)
    )

    with serve(pact):
        answer = charge(contract.CHARGE_REPLAYED, "tok_visa")

    assert (answer.status_code, answer.body["status"]) == (200, "succeeded")


def test_a_charge_while_its_key_is_in_flight_is_a_409(recorder, serve):
    order_id = contract.order_id_for(contract.CHARGE_IN_FLIGHT)
    pact = recorder.pact()
    (
        contract.charge_request(pact, contract.CHARGE_IN_FLIGHT, "tok_visa")
        .given(
            *in_flight_state(
                "/v1/charges", clients.charge_key(order_id), contract.charge_body(order_id, "tok_visa")
            )
        )
        .will_respond_with(409)
        .with_body(contract.error_like("idempotency_error", "idempotency_key_in_use"), content_type=JSON)
    )

    with serve(pact):
        answer = charge(contract.CHARGE_IN_FLIGHT, "tok_visa")

    # Not a decline: payments keeps the charge in doubt and asks again later.
    assert (answer.status_code, answer.error_code) == (409, "idempotency_key_in_use")


# GET /v1/charges?idempotency_key=


def test_the_charges_made_with_an_orders_key_are_listed(recorder, serve):
    order_id = contract.order_id_for(contract.FIND_CHARGED)
    earlier = contract.request_state(
        "/v1/charges", clients.charge_key(order_id), contract.charge_body(order_id, "tok_visa")
    )
    pact = recorder.pact()
    (
        contract.find_request(pact, contract.FIND_CHARGED)
        .given(contract.CHARGE_MADE, earlier)
        .will_respond_with(200)
        .with_body({"data": match.each_like(contract.charge_like())}, content_type=JSON)
    )

    with serve(pact):
        answer = clients.find_charges(order_id=order_id)

    assert answer.status_code == 200
    assert [(c["id"], c["status"]) for c in answer.body["data"]] == [
        ("ch_3f9a1c0b2d4e5f6a7b8c9d0e", "succeeded")
    ]


def test_a_key_nothing_was_charged_with_lists_no_charge(recorder, serve):
    pact = recorder.pact()
    contract.find_request(pact, contract.FIND_NOTHING).will_respond_with(200).with_body(
        {"data": []}, content_type=JSON
    )

    with serve(pact):
        answer = clients.find_charges(order_id=contract.order_id_for(contract.FIND_NOTHING))

    # payments then settles the charge in doubt as never taken: an empty list must mean exactly that.
    assert (answer.status_code, answer.body["data"]) == (200, [])


def test_a_lookup_while_a_charge_with_the_key_is_in_flight_is_a_409(recorder, serve):
    order_id = contract.order_id_for(contract.FIND_IN_FLIGHT)
    pact = recorder.pact()
    (
        contract.find_request(pact, contract.FIND_IN_FLIGHT)
        .given(
            *in_flight_state(
                "/v1/charges", clients.charge_key(order_id), contract.charge_body(order_id, "tok_visa")
            )
        )
        .will_respond_with(409)
        .with_body(contract.error_like("idempotency_error", "idempotency_key_in_use"), content_type=JSON)
    )

    with serve(pact):
        answer = clients.find_charges(order_id=order_id)

    assert (answer.status_code, answer.error_code) == (409, "idempotency_key_in_use")


# POST /v1/refunds


def test_a_captured_charge_is_refunded_under_a_refund_id(recorder, serve):
    pact = recorder.pact()
    (
        contract.refund_request(pact, contract.REFUND)
        .given(contract.CAPTURED_CHARGE, charge_id=contract.CHARGE_ID, amount=f"{contract.AMOUNT:.2f}")
        .will_respond_with(200)
        .with_body(
            {"id": match.regex("re_5e6f7a8b9c0d1e2f3a4b5c6d", regex=r"^re_\w+$"), "status": "succeeded"},
            content_type=JSON,
        )
    )

    with serve(pact):
        answer = refund(contract.REFUND)

    assert (answer.status_code, answer.body["id"]) == (200, "re_5e6f7a8b9c0d1e2f3a4b5c6d")


def test_refunding_a_charge_already_refunded_is_a_400(recorder, serve):
    pact = recorder.pact()
    (
        contract.refund_request(pact, contract.REFUND_ALREADY_REFUNDED)
        .given(contract.REFUNDED_CHARGE, charge_id=contract.CHARGE_ID, amount=f"{contract.AMOUNT:.2f}")
        .will_respond_with(400)
        .with_body(contract.error_like("invalid_request_error", "charge_already_refunded"), content_type=JSON)
    )

    with serve(pact):
        answer = refund(contract.REFUND_ALREADY_REFUNDED)

    assert (answer.status_code, answer.error_code) == (400, "charge_already_refunded")


def test_a_refund_while_its_key_is_in_flight_is_a_409(recorder, serve):
    order_id = contract.order_id_for(contract.REFUND_IN_FLIGHT)
    pact = recorder.pact()
    (
        contract.refund_request(pact, contract.REFUND_IN_FLIGHT)
        .given(*in_flight_state("/v1/refunds", clients.refund_key(order_id), contract.refund_body()))
        .will_respond_with(409)
        .with_body(contract.error_like("idempotency_error", "idempotency_key_in_use"), content_type=JSON)
    )

    with serve(pact):
        answer = refund(contract.REFUND_IN_FLIGHT)

    assert (answer.status_code, answer.error_code) == (409, "idempotency_key_in_use")

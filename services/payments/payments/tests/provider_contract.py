"""What payments expects of the payment provider, as pact interactions
(contracts/pacts/payments-payment_provider.json), used by test_provider_contract.py.

The sandbox's tests (sandbox/payment_provider/tests/test_payments_contract.py) know the provider states
only by their names and parameters, which are the contract: renaming one here breaks that verification.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from pact import match

from payments import clients

CONSUMER = "payments"
PROVIDER = clients.PROVIDER

# Provider states. Their parameters carry the exact request (path, key, body) they are about, so the
# provider can make that request earlier (an answered or a still running one).
CHARGE_MADE = "a charge was made with this idempotency key"
REQUEST_IN_FLIGHT = "a request with this idempotency key is in flight"
CAPTURED_CHARGE = "a captured charge exists"
REFUNDED_CHARGE = "a fully refunded charge exists"

AMOUNT = Decimal("12.50")
CURRENCY = "USD"
CHARGE_ID = "ch_pact0captured0charge"  # the charge the refund interactions name

CHARGE_PAYS = "a charge of a card that pays"
CHARGE_DECLINES = "a charge of a card that declines"
CHARGE_UNKNOWN_TOKEN = "a charge with a token the provider does not know"
CHARGE_REPLAYED = "a charge repeated with the key of a charge already made"
CHARGE_IN_FLIGHT = "a charge while a request with its key is in flight"
FIND_CHARGED = "a lookup of the charges made with an order's key"
FIND_NOTHING = "a lookup of an order's key nothing was charged with"
FIND_IN_FLIGHT = "a lookup of an order's key while a charge with it is in flight"
REFUND = "a refund of a captured charge"
REFUND_ALREADY_REFUNDED = "a refund of a charge already refunded"
REFUND_IN_FLIGHT = "a refund while a request with its key is in flight"
INTERACTIONS = {
    CHARGE_PAYS,
    CHARGE_DECLINES,
    CHARGE_UNKNOWN_TOKEN,
    CHARGE_REPLAYED,
    CHARGE_IN_FLIGHT,
    FIND_CHARGED,
    FIND_NOTHING,
    FIND_IN_FLIGHT,
    REFUND,
    REFUND_ALREADY_REFUNDED,
    REFUND_IN_FLIGHT,
}

_ORDER_NAMESPACE = uuid.UUID("6f1d4a52-8c3b-4e7a-9d20-b5c4e3f2a101")


def order_id_for(description: str) -> uuid.UUID:
    """A fixed order per interaction: stable pact files, and no two interactions share a key."""
    return uuid.uuid5(_ORDER_NAMESPACE, description)


def charge_body(order_id: uuid.UUID, token: str) -> dict:
    """The body payments' client sends for a charge (the example the provider receives)."""
    return {
        "amount": f"{AMOUNT:.2f}",
        "currency": CURRENCY,
        "source": token,
        "description": clients.charge_description(order_id),
    }


def refund_body() -> dict:
    return {"charge": CHARGE_ID, "amount": f"{AMOUNT:.2f}"}


def charge_request(pact, description: str, token: str):
    """POST /v1/charges as payments sends it: money as a decimal string, the order's charge key."""
    order_id = order_id_for(description)
    body = charge_body(order_id, token)
    return (
        pact.upon_receiving(description)
        .with_request("POST", "/v1/charges")
        .with_header("Idempotency-Key", _key_like(clients.charge_key(order_id), "charge"))
        .with_body(
            {
                **body,
                "amount": _money_like(body["amount"]),
                "currency": match.regex(CURRENCY, regex=r"^[A-Z]{3}$"),
                "description": match.regex(body["description"], regex=r"^order [0-9a-f-]{36}$"),
            },
            content_type="application/json",
        )
    )


def find_request(pact, description: str):
    order_id = order_id_for(description)
    return (
        pact.upon_receiving(description)
        .with_request("GET", "/v1/charges")
        .with_query_parameter("idempotency_key", _key_like(clients.charge_key(order_id), "charge"))
    )


def refund_request(pact, description: str):
    order_id = order_id_for(description)
    return (
        pact.upon_receiving(description)
        .with_request("POST", "/v1/refunds")
        .with_header("Idempotency-Key", _key_like(clients.refund_key(order_id), "refund"))
        .with_body(
            {"charge": match.regex(CHARGE_ID, regex=r"^ch_\w+$"), "amount": _money_like(f"{AMOUNT:.2f}")},
            content_type="application/json",
        )
    )


def request_state(path: str, key: str, body: dict) -> dict:
    """The parameters of CHARGE_MADE and REQUEST_IN_FLIGHT: the request made before this one."""
    return {"path": path, "idempotency_key": key, "body": body}


def charge_like() -> dict:
    """A captured charge as payments reads it: its id (kept to refund it later) and its status."""
    return {"id": match.regex("ch_3f9a1c0b2d4e5f6a7b8c9d0e", regex=r"^ch_\w+$"), "status": "succeeded"}


def error_like(error_type: str, code: str) -> dict:
    """Stripe's error shape; payments shows `message` and logs `code`."""
    return {"error": {"type": error_type, "code": code, "message": match.str("What went wrong.")}}


def _money_like(example: str):
    return match.regex(example, regex=r"^\d+\.\d{2}$")


def _key_like(example: str, kind: str):
    # Derived from the order, never from the attempt: what makes a retried charge land once.
    return match.regex(example, regex=rf"^order-[0-9a-f-]{{36}}-{kind}$")

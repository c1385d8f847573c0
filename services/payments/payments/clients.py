"""Typed calls to the payment provider, through the shared breaker-wrapped client.

Every write carries an `Idempotency-Key` derived from the order, never from the attempt: a retry (by
the client's own retries, a re-queued task or another worker) can only ever get the first answer.
These functions never run inside a database transaction; they raise `DownstreamUnavailable` when the
provider could not be used (timeouts, 5xx, an open circuit) and return the provider's answer otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from shared.http import DownstreamUnavailable, ServiceClient, service_client, service_url

PROVIDER = "payment_provider"
CONNECT_TIMEOUT_SECONDS = 0.5
ATTEMPTS = 3


@dataclass(frozen=True)
class ProviderAnswer:
    status_code: int
    body: dict

    @property
    def error_message(self) -> str:
        error = self.body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return str(message or f"HTTP {self.status_code} from the payment provider")

    @property
    def error_code(self) -> str:
        error = self.body.get("error")
        return str(error.get("code", "")) if isinstance(error, dict) else ""


def charge_key(order_id) -> str:
    return f"order-{order_id}-charge"


def refund_key(order_id) -> str:
    return f"order-{order_id}-refund"


def charge_description(order_id) -> str:
    return f"order {order_id}"


def provider() -> ServiceClient:
    return service_client(
        PROVIDER,
        service_url(PROVIDER),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        attempts=ATTEMPTS,
        fail_max=settings.PROVIDER_BREAKER_FAIL_MAX,
        reset_timeout=settings.PROVIDER_BREAKER_RESET_SECONDS,
    )


def worst_case_call_seconds() -> float:
    """How long one call may take with every retry timing out (tenacity waits at most 2 s between)."""
    return ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + settings.PROVIDER_TIMEOUT_SECONDS) + (ATTEMPTS - 1) * 2.0


def never_sent(exc: DownstreamUnavailable) -> bool:
    """True when the circuit was open: the request did not leave this process, so it cannot have landed."""
    return exc.circuit_open


def create_charge(*, order_id, amount: Decimal, currency: str, token: str) -> ProviderAnswer:
    response = provider().post(
        "/v1/charges",
        json={
            "amount": f"{amount:.2f}",
            "currency": currency,
            "source": token,
            "description": charge_description(order_id),
        },
        headers={"Idempotency-Key": charge_key(order_id)},
    )
    return _answer(response)


def find_charges(*, order_id) -> ProviderAnswer:
    """The charges the provider holds under this order's charge key (to settle a charge in doubt).

    While a request with that key is still being processed the provider answers 409.
    """
    response = provider().get("/v1/charges", params={"idempotency_key": charge_key(order_id)})
    return _answer(response)


def create_refund(*, order_id, charge_id: str, amount: Decimal) -> ProviderAnswer:
    response = provider().post(
        "/v1/refunds",
        json={"charge": charge_id, "amount": f"{amount:.2f}"},
        headers={"Idempotency-Key": refund_key(order_id)},
    )
    return _answer(response)


def _answer(response) -> ProviderAnswer:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return ProviderAnswer(response.status_code, body if isinstance(body, dict) else {})

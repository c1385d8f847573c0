"""The payments API answers what its own OpenAPI document (as served) promises."""

from __future__ import annotations

import pytest

from payments import services
from payments.tests.helpers import create_payment
from shared.testing import openapi_errors

pytestmark = pytest.mark.django_db

DETAIL = "/api/v1/payments/{id}/"


@pytest.fixture
def schema(customer_client) -> dict:
    response = customer_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def detail(client, payment) -> dict:
    response = client.get(DETAIL.format(id=payment.id))
    assert response.status_code == 200, response.content
    return response.json()


def test_a_payment_without_failure_has_a_null_failure_reason_that_matches_the_schema(customer_client, schema):
    body = detail(customer_client, create_payment())

    assert (body["status"], body["failure_reason"]) == ("pending", None)
    assert openapi_errors(schema, body, path=DETAIL) == []


def test_a_failed_payment_names_its_reason_and_matches_the_schema(customer_client, schema):
    payment = services.payment_charge(payment_id=create_payment(token="tok_chargeDeclined").id)
    body = detail(customer_client, payment)

    assert (body["status"], body["failure_reason"]) == ("failed", "payment_declined")
    assert openapi_errors(schema, body, path=DETAIL) == []


def test_the_schema_documents_failure_reason_as_one_of_the_reasons_or_null(schema):
    field = schema["components"]["schemas"]["PaymentDetail"]["properties"]["failure_reason"]
    assert openapi_errors(schema, {**_valid_detail(), "failure_reason": ""}, path=DETAIL) != []
    assert "null" in field["description"]


def _valid_detail() -> dict:
    return {
        "id": "0b7b5d6e-7d43-4b4e-9a35-0f7f1f8a2c11",
        "order_id": "5f0c6a43-3a1b-4f55-8d0f-2b0ad3f7c9e4",
        "amount": "12.50",
        "currency": "USD",
        "status": "pending",
        "created_at": "2026-01-01T00:00:00Z",
        "failure_reason": None,
        "updated_at": "2026-01-01T00:00:00Z",
    }

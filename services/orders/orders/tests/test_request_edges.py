"""Requests at the edges (docs/security.md): deeply nested bodies, OPTIONS, Django's own refusals."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from orders.tests.helpers import ORDERS_URL, assert_error
from shared.testing import api_paths, assert_refusals_in_error_shape, deeply_nested_json, options_failures

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (ORDERS_URL, {}),
        # The idempotency fingerprint hashes the parsed body: it never sees one nested this deep.
        (ORDERS_URL, {"HTTP_IDEMPOTENCY_KEY": "deep-1"}),
        ("/api/v1/cart/items/", {}),
        ("/api/v1/cart/checkout/", {"HTTP_IDEMPOTENCY_KEY": "deep-2"}),
    ],
)
def test_a_deeply_nested_body_is_a_400(customer, path, headers):
    body = deeply_nested_json("items")
    response = customer.client().post(path, data=body, content_type="application/json", **headers)
    assert_error(response, 400, "malformed_request")


def test_options_never_fails_on_any_route(customer, staff):
    clients = {"anonymous": APIClient(), "customer": customer.client(), "staff": staff.client()}
    assert options_failures(clients, api_paths()) == []


def test_djangos_refusals_answer_in_the_error_shape(customer, settings):
    assert_refusals_in_error_shape(client=customer.client(), json_path=ORDERS_URL, settings=settings)

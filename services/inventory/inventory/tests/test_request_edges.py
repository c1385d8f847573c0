"""Requests at the edges (docs/security.md): deeply nested bodies, OPTIONS, Django's own refusals."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from inventory.tests.helpers import assert_error
from shared.testing import api_paths, assert_refusals_in_error_shape, deeply_nested_json, options_failures

pytestmark = pytest.mark.django_db


def adjustments_url(product_id) -> str:
    return f"/api/v1/stock/{product_id}/adjustments/"


def test_a_deeply_nested_adjustment_is_a_400(staff_client, make_stock):
    stock = make_stock(10)
    response = staff_client.post(
        adjustments_url(stock.product_id), data=deeply_nested_json("delta"), content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")


def test_options_never_fails_on_any_route(customer_client, staff_client, make_stock):
    clients = {"anonymous": APIClient(), "customer": customer_client, "staff": staff_client}
    assert options_failures(clients, api_paths(product_id=str(make_stock(5).product_id))) == []


def test_djangos_refusals_answer_in_the_error_shape(staff_client, make_stock, settings):
    path = adjustments_url(make_stock(10).product_id)
    assert_refusals_in_error_shape(client=staff_client, json_path=path, settings=settings)

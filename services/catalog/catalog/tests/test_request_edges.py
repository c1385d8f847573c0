"""Requests at the edges (docs/security.md): deeply nested bodies, OPTIONS, Django's own refusals."""

from __future__ import annotations

import pytest

from catalog.tests.helpers import assert_error
from shared.testing import api_paths, assert_refusals_in_error_shape, deeply_nested_json, options_failures

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_deeply_nested_body_on_a_staff_write_is_a_400(staff_client, make_product, method):
    product = make_product()
    path = "/api/v1/products/" if method == "post" else f"/api/v1/products/{product.id}/"
    response = getattr(staff_client, method)(
        path, data=deeply_nested_json("name"), content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")


def test_options_on_a_product_as_staff_lists_what_staff_may_do(staff_client, make_product):
    response = staff_client.options(f"/api/v1/products/{make_product().id}/")

    assert response.status_code == 200, response.content
    assert set(response["Allow"].split(", ")) == {"GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    assert "actions" not in response.json()  # request bodies are described by the OpenAPI document


def test_options_never_fails_on_any_route(api_client, customer_client, staff_client, make_product):
    clients = {"anonymous": api_client, "customer": customer_client, "staff": staff_client}
    assert options_failures(clients, api_paths(pk=str(make_product().id))) == []


def test_djangos_refusals_answer_in_the_error_shape(staff_client, settings):
    assert_refusals_in_error_shape(client=staff_client, json_path="/api/v1/products/", settings=settings)

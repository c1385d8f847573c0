"""Requests at the edges (docs/security.md): deeply nested bodies, OPTIONS, Django's own refusals."""

from __future__ import annotations

import pytest

from identity.tests.helpers import assert_error
from shared.testing import api_paths, assert_refusals_in_error_shape, deeply_nested_json, options_failures

PUBLIC_POSTS = (
    "/api/v1/auth/register/",
    "/api/v1/auth/token/",
    "/api/v1/auth/token/refresh/",
    "/api/v1/auth/logout/",
)


@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_POSTS)
def test_a_deeply_nested_body_on_a_public_endpoint_is_a_400(api_client, path):
    response = api_client.post(path, data=deeply_nested_json("refresh"), content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_a_deeply_nested_body_on_a_staff_endpoint_is_a_400(staff_client, customer):
    body = deeply_nested_json("full_name")
    response = staff_client.patch(f"/api/v1/users/{customer.id}/", data=body, content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_options_never_fails_on_any_route(api_client, customer_client, staff_client, customer):
    clients = {"anonymous": api_client, "customer": customer_client, "staff": staff_client}
    assert options_failures(clients, api_paths(pk=str(customer.id))) == []


@pytest.mark.django_db
def test_djangos_refusals_answer_in_the_error_shape(api_client, settings):
    assert_refusals_in_error_shape(client=api_client, json_path="/api/v1/auth/register/", settings=settings)

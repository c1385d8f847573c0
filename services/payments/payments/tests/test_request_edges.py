"""Requests at the edges (docs/security.md): OPTIONS and Django's own refusals (payments takes no bodies)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from shared.testing import api_paths, assert_refusals_in_error_shape, options_failures

pytestmark = pytest.mark.django_db


def test_options_never_fails_on_any_route(customer_client, staff_client):
    clients = {"anonymous": APIClient(), "customer": customer_client, "staff": staff_client}
    assert options_failures(clients, api_paths()) == []


def test_djangos_refusals_answer_in_the_error_shape():
    assert_refusals_in_error_shape()

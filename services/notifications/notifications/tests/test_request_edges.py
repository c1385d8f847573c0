"""Requests at the edges (docs/security.md): OPTIONS and Django's own refusals (no bodies taken here)."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from notifications.tests.helpers import bearer_client
from shared.testing import api_paths, assert_refusals_in_error_shape, options_failures

pytestmark = pytest.mark.django_db


def test_options_never_fails_on_any_route():
    clients = {
        "anonymous": APIClient(),
        "customer": bearer_client(user_id=str(uuid.uuid4())),
        "staff": bearer_client(user_id=str(uuid.uuid4()), is_staff=True),
    }
    assert options_failures(clients, api_paths()) == []


def test_djangos_refusals_answer_in_the_error_shape():
    assert_refusals_in_error_shape()

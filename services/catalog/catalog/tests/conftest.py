"""Fixtures shared by catalog's tests: an isolated cache, clients for each kind of caller, products."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache as django_cache
from rest_framework.test import APIClient

from catalog import services
from catalog.models import Category, Product
from catalog.tests.helpers import bearer_client
from shared.redis_gate import GATE
from shared.testing import (
    access_token,
    relayed_event_ids,  # noqa: F401 (autouse fixture)
)


@pytest.fixture(autouse=True)
def isolated_cache(settings):
    """The real Redis, under a key prefix of this test's own: nothing shared with a running platform
    or with another test. Removed afterwards."""
    default = dict(settings.CACHES["default"])
    default["KEY_PREFIX"] = f"catalog-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": default}
    GATE.reset()  # a test that broke Redis must not make the next one skip it
    yield
    django_cache.delete_pattern("*")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def customer_client():
    return bearer_client(access_token(user_id=str(uuid.uuid4()), email="carla@example.com"))


@pytest.fixture
def staff_client():
    return bearer_client(access_token(user_id=str(uuid.uuid4()), email="sam@example.com", is_staff=True))


@pytest.fixture
def kitchen(db) -> Category:
    return services.category_create(name="Kitchen", slug="kitchen")


@pytest.fixture
def books(db) -> Category:
    return services.category_create(name="Books", slug="books")


@pytest.fixture
def make_product(kitchen):
    """`make_product(sku=..., **fields)` through the service function (so it is a real, announced product)."""
    counter = iter(range(1, 10_000))

    def _make(**fields) -> Product:
        number = next(counter)
        fields.setdefault("sku", f"SKU-{number:04d}")
        fields.setdefault("name", f"Product {number:04d}")
        fields.setdefault("category", kitchen)
        fields["price"] = Decimal(str(fields.get("price", "10.00")))
        is_active = fields.pop("is_active", True)
        product = services.product_create(**fields)
        if not is_active:
            product = services.product_delete(product=product)
        return product

    return _make

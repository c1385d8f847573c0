"""Fixtures shared by inventory's tests: stock rows, API clients with identity-like tokens."""

from __future__ import annotations

import uuid

import pytest

from inventory import services
from inventory.tests.helpers import bearer_client
from shared.testing import (
    access_token,
    relayed_event_ids,  # noqa: F401 (autouse fixture)
)


@pytest.fixture
def make_stock(db):
    """`make_stock(on_hand)` -> a Stock row created the way product.created creates it."""

    def _make(on_hand: int = 10, *, product_id: uuid.UUID | None = None, sku: str = ""):
        stock, _created = services.stock_create(
            product_id=product_id or uuid.uuid4(), initial_stock=on_hand, sku=sku
        )
        return stock

    return _make


@pytest.fixture
def customer_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def staff_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def customer_client(customer_id):
    return bearer_client(access_token(user_id=customer_id, email="carla@example.com"))


@pytest.fixture
def staff_client(staff_id):
    return bearer_client(access_token(user_id=staff_id, email="sam.staff@example.com", is_staff=True))

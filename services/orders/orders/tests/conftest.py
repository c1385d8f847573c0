"""Fixtures shared by orders' tests: users and their clients, a fake catalog, clean Redis state."""

from __future__ import annotations

import uuid

import pytest
from django_redis import get_redis_connection

from orders import cart
from orders.tests.helpers import ApiUser, FakeCatalog, closed_port_url
from shared import http
from shared.testing import relayed_event_ids  # noqa: F401 (autouse fixture)


def _reset_catalog_client() -> None:
    """The breaker's state lives in Redis and the client is cached per process: start every test afresh."""
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter("breaker:catalog:*"))
    if keys:
        redis.delete(*keys)
    http.forget_clients()


@pytest.fixture(autouse=True)
def catalog_unreachable(settings):
    """No test may reach a real catalog: unless it asks for `catalog`, nothing listens there."""
    _reset_catalog_client()
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": closed_port_url()}
    yield
    _reset_catalog_client()


@pytest.fixture
def catalog(settings, catalog_unreachable):
    fake = FakeCatalog()
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": fake.url}
    yield fake
    fake.stop()


@pytest.fixture
def make_user():
    """`make_user(is_staff=False)` -> an ApiUser; their carts are removed from Redis afterwards."""
    users: list[ApiUser] = []

    def make(*, email: str | None = None, is_staff: bool = False) -> ApiUser:
        user_id = uuid.uuid4()
        users.append(ApiUser(id=user_id, email=email or f"{user_id.hex[:8]}@example.com", is_staff=is_staff))
        return users[-1]

    yield make
    if users:
        get_redis_connection("default").delete(*(cart.cart_key(user.id) for user in users))


@pytest.fixture
def customer(make_user) -> ApiUser:
    return make_user(email="carla@example.com")


@pytest.fixture
def other_customer(make_user) -> ApiUser:
    return make_user(email="olga@example.com")


@pytest.fixture
def staff(make_user) -> ApiUser:
    return make_user(email="sam.staff@example.com", is_staff=True)

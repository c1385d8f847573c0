"""Fixtures shared by identity's tests: clients, a customer and a staff user, and logging in."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from identity import services
from identity.tests.helpers import PASSWORD, TOKEN_URL, bearer_client
from shared.auth import REVOCATION_KEY, _redis
from shared.testing import relayed_event_ids  # noqa: F401 (autouse fixture)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def revoked_user_ids(monkeypatch):
    """Revocations really go to Redis (other services read them there); remove ours afterwards."""
    user_ids: list[str] = []
    revoke = services.revoke_user_tokens

    def recording_revoke(*, user_id, at, ttl_seconds):
        user_ids.append(user_id)
        revoke(user_id=user_id, at=at, ttl_seconds=ttl_seconds)

    monkeypatch.setattr(services, "revoke_user_tokens", recording_revoke)
    yield user_ids
    if user_ids:
        _redis().delete(*(REVOCATION_KEY.format(user_id=user_id) for user_id in user_ids))


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def customer(db):
    return services.user_register(email="carla@example.com", password=PASSWORD, full_name="Carla Customer")


@pytest.fixture
def staff(db):
    return services.user_register(
        email="sam.staff@example.com", password=PASSWORD, full_name="Sam Staff", is_staff=True
    )


@pytest.fixture
def login(db):
    """`login(email)` -> {"access", "refresh"}, through the real token endpoint."""

    def _login(email: str, password: str = PASSWORD) -> dict:
        response = APIClient().post(TOKEN_URL, {"email": email, "password": password}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    return _login


@pytest.fixture
def customer_client(customer, login):
    return bearer_client(login(customer.email)["access"])


@pytest.fixture
def staff_client(staff, login):
    return bearer_client(login(staff.email)["access"])

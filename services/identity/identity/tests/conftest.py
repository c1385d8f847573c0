"""Fixtures shared by identity's tests: clients, a customer and a staff user, and logging in."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from identity import services
from identity.tests.helpers import PASSWORD, TOKEN_URL, bearer_client
from shared.auth import revocation
from shared.testing import relayed_event_ids  # noqa: F401 (autouse fixture)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def published(monkeypatch):
    """Revocations really go to Redis (other services read them there); remove ours afterwards.
    Yields the keys written, in order."""
    keys: list[str] = []
    store = revocation.RevocationList
    publish_version, publish_ended = store.publish_user_version, store.publish_sign_ins_ended

    def recording_version(self, *, user_id, version, ttl_seconds):
        publish_version(self, user_id=user_id, version=version, ttl_seconds=ttl_seconds)
        keys.append(revocation.USER_VERSION_KEY.format(user_id=user_id))

    def recording_ended(self, sign_in_ids, *, ttl_seconds):
        sign_in_ids = list(sign_in_ids)
        publish_ended(self, sign_in_ids, ttl_seconds=ttl_seconds)
        keys.extend(revocation.SIGN_IN_ENDED_KEY.format(sign_in_id=sign_in) for sign_in in sign_in_ids)

    monkeypatch.setattr(store, "publish_user_version", recording_version)
    monkeypatch.setattr(store, "publish_sign_ins_ended", recording_ended)
    yield keys
    if keys:
        from shared.auth.api import revocation_list

        revocation_list().redis.delete(*keys)


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

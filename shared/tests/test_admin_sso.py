"""shared.auth.admin_sso in a consuming service (the probe): which cookies open its admin, the shadow user,
where visitors without one are sent, and what happens when the revocation list cannot be read. Real
Postgres and Redis; the gateway-level flow with identity is tests/test_admin_sso.py at the repository root.
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from django.contrib.auth import get_user_model

from shared.auth.api import revocation_list
from shared.testing import admin_sso_claims, generate_key_pair

pytestmark = pytest.mark.django_db

INDEX = "/admin/shared_tests/"


def _key_pair() -> tuple[str, str]:
    private, public = generate_key_pair()
    return private.decode(), public.decode()


IDENTITY_KEYS = _key_pair()
OTHER_KEYS = _key_pair()


@pytest.fixture(autouse=True)
def identity_keys(settings):
    """The probe verifies with the public key of a key pair the test holds, as if it were identity's."""
    settings.JWT = {**settings.JWT, "PUBLIC_KEY": IDENTITY_KEYS[1]}
    from shared.auth import api

    api.verifier.cache_clear()
    yield
    api.verifier.cache_clear()


@pytest.fixture
def revocations():
    """The revocation list the probe reads; the entries a test writes are removed afterwards."""
    store, written = revocation_list(), []
    yield store, written
    if written:
        store.redis.delete(*written)


def _signed(key: str = IDENTITY_KEYS[0], **overrides) -> str:
    return jwt.encode(admin_sso_claims(**overrides), key, algorithm="RS256")


def _staff_cookie(**overrides) -> tuple[dict, str]:
    claims = (
        admin_sso_claims(
            user_id=str(uuid.uuid4()), email="ops@example.com", name="Olga Ops", is_superuser=True
        )
        | overrides
    )
    return claims, jwt.encode(claims, IDENTITY_KEYS[0], algorithm="RS256")


def _with_cookie(client, value: str):
    client.cookies["admin_sso"] = value
    return client


def test_a_valid_cookie_opens_the_admin_as_a_shadow_staff_user(client):
    claims, cookie = _staff_cookie()
    response = _with_cookie(client, cookie).get(INDEX)

    assert response.status_code == 200
    assert "/admin/shared_tests/messaging/" in response.content.decode()
    shadow = get_user_model().objects.get(username=claims["user_id"])
    assert (shadow.email, shadow.first_name, shadow.is_staff, shadow.is_superuser) == (
        "ops@example.com", "Olga Ops", True, True,
    )  # fmt: skip
    assert not shadow.has_usable_password()


def test_the_shadow_user_follows_the_claims_and_stays_one_row(client):
    user_id = str(uuid.uuid4())
    _with_cookie(client, _signed(user_id=user_id, email="old@example.com")).get(INDEX)
    response = _with_cookie(
        client, _signed(user_id=user_id, email="new@example.com", is_superuser=False)
    ).get(INDEX)

    shadows = get_user_model().objects.filter(username=user_id)
    assert [(s.email, s.is_superuser) for s in shadows] == [("new@example.com", False)]
    assert response.status_code == 200  # staff without permissions: the index says there is nothing to see
    assert "/admin/shared_tests/messaging/" not in response.content.decode()


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(lambda: _signed(is_staff=False), id="customer"),
        pytest.param(lambda: _signed(aud="api"), id="other audience"),
        pytest.param(lambda: _signed(token_use="access"), id="not an sso token"),
        pytest.param(lambda: _signed(iat=int(time.time()) - 600, exp=int(time.time()) - 1), id="expired"),
        pytest.param(lambda: _signed(OTHER_KEYS[0]), id="other key"),
        pytest.param(lambda: _signed(iss="someone-else"), id="other issuer"),
        pytest.param(lambda: _signed(sid=None), id="no sign-in"),
        pytest.param(lambda: jwt.encode(admin_sso_claims(), None, algorithm="none"), id="alg none"),
        pytest.param(
            lambda: jwt.encode(admin_sso_claims(), "a-shared-secret-of-32-bytes-or-more", algorithm="HS256"),
            id="hmac",
        ),
        pytest.param(lambda: "not-a-token", id="garbage"),
    ],
)
def test_refused_cookies_leave_the_visitor_anonymous(client, cookie):
    response = _with_cookie(client, cookie()).get(INDEX)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/shared_tests/login/")
    assert not get_user_model().objects.exists()


def test_a_change_of_access_at_identity_refuses_cookies_of_the_older_version(client, revocations):
    store, written = revocations
    claims, cookie = _staff_cookie(ver=3)
    assert _with_cookie(client, cookie).get(INDEX).status_code == 200

    store.publish_user_version(user_id=claims["user_id"], version=4, ttl_seconds=60)  # demoted, deactivated
    written.append(f"auth:user-version:{claims['user_id']}")

    assert _with_cookie(client, cookie).get(INDEX).status_code == 302
    assert (
        _with_cookie(client, _staff_cookie(user_id=claims["user_id"], ver=4)[1]).get(INDEX).status_code == 200
    )


def test_an_ended_sign_in_refuses_every_cookie_minted_for_it_and_no_other(client, revocations):
    store, written = revocations
    sign_in = str(uuid.uuid4())
    first, second = _staff_cookie(sid=sign_in)[1], _staff_cookie(sid=sign_in)[1]
    other = _staff_cookie()[1]

    store.publish_sign_ins_ended([sign_in], ttl_seconds=60)  # logout at identity
    written.append(f"auth:sign-in-ended:{sign_in}")

    assert _with_cookie(client, first).get(INDEX).status_code == 302
    assert _with_cookie(client, second).get(INDEX).status_code == 302
    assert _with_cookie(client, other).get(INDEX).status_code == 200


@pytest.fixture
def unreachable_revocation_list(settings):
    """The revocation list is read from a port where nothing listens."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    revocation_list.cache_clear()
    yield
    revocation_list.cache_clear()


def test_an_unreadable_revocation_list_closes_the_admin_with_a_fast_503(client, unreachable_revocation_list):
    """Fail closed for staff (docs/security.md)."""
    started = time.monotonic()
    response = _with_cookie(client, _staff_cookie()[1]).get(INDEX)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert time.monotonic() - started < 1.0
    assert not get_user_model().objects.exists()


def test_the_login_page_sends_visitors_to_identity_with_where_they_were_going(client, settings):
    response = client.get("/admin/shared_tests/login/", {"next": "/admin/shared_tests/messaging/"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/identity/login/?next=%2Fadmin%2Fshared_tests%2Fmessaging%2F"
    assert client.get("/admin/shared_tests/login/", {"local": "1"}).status_code == 200  # local debugging


def test_logout_hands_over_to_identity(client):
    response = _with_cookie(client, _staff_cookie()[1]).post("/admin/shared_tests/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/identity/logout/"


def test_bare_admin_redirects_to_the_service_prefix(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == INDEX

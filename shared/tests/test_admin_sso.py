"""shared.admin_sso in a consuming service (the probe): which cookies open its admin, the shadow user,
and where visitors without one are sent. Real Postgres and Redis; the gateway-level flow with identity
is tests/test_admin_sso.py at the repository root.
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import jwt
import pytest
from django.contrib.auth import get_user_model

from shared.admin_sso import tokens
from shared.auth import revoke_user_tokens
from shared.jwt_keys import generate_pair
from shared.testing import admin_sso_claims

pytestmark = pytest.mark.django_db

INDEX = "/admin/shared_tests/"


def _key_pair() -> tuple[str, str]:
    private, public = generate_pair()
    return private.decode(), public.decode()


IDENTITY_KEYS = _key_pair()
OTHER_KEYS = _key_pair()


@pytest.fixture(autouse=True)
def identity_keys(settings):
    """The probe verifies with the public key of a key pair the test holds, as if it were identity's."""
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": IDENTITY_KEYS[0]}
    settings.JWT_PUBLIC_KEY = IDENTITY_KEYS[1]


def _staff(**fields) -> SimpleNamespace:
    values = {"pk": uuid.uuid4(), "email": "ops@example.com", "full_name": "Olga Ops", "is_active": True,
              "is_staff": True, "is_superuser": True}  # fmt: skip
    return SimpleNamespace(**(values | fields))


def _signed(key: str = IDENTITY_KEYS[0], **overrides) -> str:
    return jwt.encode(admin_sso_claims(**overrides), key, algorithm="RS256")


def _with_cookie(client, value: str):
    client.cookies["admin_sso"] = value
    return client


def test_a_valid_cookie_opens_the_admin_as_a_shadow_staff_user(client):
    staff = _staff()
    response = _with_cookie(client, tokens.sso_token_issue(user=staff)).get(INDEX)

    assert response.status_code == 200
    assert "/admin/shared_tests/messaging/" in response.content.decode()
    shadow = get_user_model().objects.get(username=str(staff.pk))
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


def test_deactivation_at_identity_refuses_cookies_issued_before_it(client):
    staff = _staff()
    cookie = tokens.sso_token_issue(user=staff)
    revoke_user_tokens(user_id=str(staff.pk), at=int(time.time()), ttl_seconds=60)

    assert _with_cookie(client, cookie).get(INDEX).status_code == 302


def test_a_revoked_cookie_is_refused_and_others_are_not(client):
    revoked, other = tokens.sso_token_issue(user=_staff()), tokens.sso_token_issue(user=_staff())
    tokens.sso_token_revoke(revoked)

    assert _with_cookie(client, revoked).get(INDEX).status_code == 302
    assert _with_cookie(client, other).get(INDEX).status_code == 200


def test_only_active_staff_get_a_cookie():
    for user in (_staff(is_staff=False), _staff(is_active=False)):
        with pytest.raises(tokens.SsoRefused):
            tokens.sso_token_issue(user=user)


def test_the_login_page_sends_visitors_to_identity_with_where_they_were_going(client, settings):
    response = client.get("/admin/shared_tests/login/", {"next": "/admin/shared_tests/messaging/"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/identity/login/?next=%2Fadmin%2Fshared_tests%2Fmessaging%2F"
    assert client.get("/admin/shared_tests/login/", {"local": "1"}).status_code == 200  # local debugging


def test_logout_hands_over_to_identity(client):
    response = _with_cookie(client, tokens.sso_token_issue(user=_staff())).post("/admin/shared_tests/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/identity/logout/"


def test_bare_admin_redirects_to_the_service_prefix(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == INDEX

"""JWTs: the JWKS, signature and claim checks, refresh rotation, logout and revocation on deactivation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from identity import services
from identity.tests.helpers import PASSWORD, TOKEN_URL, assert_error, bearer_client
from shared.auth import RevocationCheckedJWTAuthentication
from shared.jwt_keys import key_id

JWKS_URL = "/.well-known/jwks.json"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/auth/me/"

pytestmark = pytest.mark.django_db


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def verify_statelessly(access: str):
    """What every other service does with a bearer token: `(user, token)`, or AuthenticationFailed."""
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {access}"))
    return RevocationCheckedJWTAuthentication().authenticate(request)


def jwks_key(api_client) -> jwt.PyJWK:
    return jwt.PyJWK(api_client.get(JWKS_URL).json()["keys"][0])


def refresh(api_client, refresh_token: str):
    return api_client.post(REFRESH_URL, {"refresh": refresh_token}, format="json")


def deactivate(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(user=user, is_active=False)


# JWKS and verification


def test_jwks_publishes_one_rsa_signing_key_anonymously(api_client):
    response = api_client.get(JWKS_URL)

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"] == key_id(settings.JWT_PUBLIC_KEY)
    assert {"n", "e"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # never the private parts


def test_an_access_token_verifies_with_the_jwks_key_and_carries_the_claims(api_client, staff, login):
    access = login(staff.email)["access"]

    claims = jwt.decode(
        access, jwks_key(api_client).key, algorithms=["RS256"], issuer=settings.SIMPLE_JWT["ISSUER"]
    )

    assert claims["user_id"] == str(staff.id)
    assert claims["email"] == staff.email
    assert claims["is_staff"] is True
    assert claims["roles"] == ["staff"]
    assert claims["token_type"] == "access"


def test_a_token_signed_by_another_key_fails_jwks_verification(api_client, customer, login):
    claims = unverified_claims(login(customer.email)["access"])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256")

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            forged, jwks_key(api_client).key, algorithms=["RS256"], issuer=settings.SIMPLE_JWT["ISSUER"]
        )


def test_a_token_signed_by_another_key_is_refused_everywhere(customer, login):
    claims = unverified_claims(login(customer.email)["access"])
    forged = jwt.encode(
        claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
    )

    assert_error(bearer_client(forged).get(ME_URL), 401, "token_not_valid")
    with pytest.raises(AuthenticationFailed):
        verify_statelessly(forged)


def test_an_unsigned_alg_none_token_is_refused(customer, login):
    claims = unverified_claims(login(customer.email)["access"])
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64url(json.dumps(claims).encode())}."

    assert_error(bearer_client(unsigned).get(ME_URL), 401, "token_not_valid")
    with pytest.raises(AuthenticationFailed):
        verify_statelessly(unsigned)


def test_a_tampered_token_is_refused(customer, login):
    header, _payload, signature = login(customer.email)["access"].split(".")
    claims = unverified_claims(login(customer.email)["access"])
    claims.update(is_staff=True, roles=["staff"])
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"

    assert_error(bearer_client(tampered).get(ME_URL), 401, "token_not_valid")
    with pytest.raises(AuthenticationFailed):
        verify_statelessly(tampered)


def test_an_expired_access_token_is_refused(customer):
    token = AccessToken.for_user(customer)
    token.set_exp(lifetime=-timedelta(seconds=1))

    assert_error(bearer_client(str(token)).get(ME_URL), 401, "token_not_valid")


def test_a_refresh_token_is_not_an_access_token(customer, login):
    refresh_token = login(customer.email)["refresh"]

    assert_error(bearer_client(refresh_token).get(ME_URL), 401, "token_not_valid")


# Refresh rotation


def test_refresh_returns_a_new_access_and_a_new_refresh(api_client, customer, login):
    tokens = login(customer.email)

    response = refresh(api_client, tokens["refresh"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != tokens["refresh"]
    assert unverified_claims(body["refresh"])["jti"] != unverified_claims(tokens["refresh"])["jti"]
    assert bearer_client(body["access"]).get(ME_URL).status_code == 200


def test_a_refreshed_access_token_keeps_the_custom_claims(api_client, staff, login):
    access = refresh(api_client, login(staff.email)["refresh"]).json()["access"]

    claims = unverified_claims(access)
    assert (claims["email"], claims["is_staff"], claims["roles"]) == (staff.email, True, ["staff"])


def test_reusing_a_rotated_refresh_token_is_401(api_client, customer, login):
    old_refresh = login(customer.email)["refresh"]
    assert refresh(api_client, old_refresh).status_code == 200

    assert_error(refresh(api_client, old_refresh), 401, "token_not_valid")


def test_the_rotated_refresh_token_refreshes_again(api_client, customer, login):
    rotated = refresh(api_client, login(customer.email)["refresh"]).json()["refresh"]

    assert refresh(api_client, rotated).status_code == 200


def test_refresh_with_garbage_is_401(api_client):
    assert_error(refresh(api_client, "not-a-token"), 401, "token_not_valid")


# Logout


def test_logout_is_204_and_the_refresh_token_then_fails(api_client, customer, login):
    refresh_token = login(customer.email)["refresh"]

    response = api_client.post(LOGOUT_URL, {"refresh": refresh_token}, format="json")

    assert response.status_code == 204
    assert BlacklistedToken.objects.filter(token__jti=unverified_claims(refresh_token)["jti"]).exists()
    assert_error(refresh(api_client, refresh_token), 401, "token_not_valid")


def test_logout_with_garbage_is_401(api_client):
    assert_error(api_client.post(LOGOUT_URL, {"refresh": "garbage"}, format="json"), 401, "token_not_valid")


def test_logout_twice_with_the_same_token_is_401(api_client, customer, login):
    refresh_token = login(customer.email)["refresh"]
    assert api_client.post(LOGOUT_URL, {"refresh": refresh_token}, format="json").status_code == 204

    response = api_client.post(LOGOUT_URL, {"refresh": refresh_token}, format="json")

    assert_error(response, 401, "token_not_valid")


def test_logout_with_an_access_token_is_401(api_client, customer, login):
    access = login(customer.email)["access"]

    assert_error(api_client.post(LOGOUT_URL, {"refresh": access}, format="json"), 401, "token_not_valid")


def test_logout_without_a_refresh_token_is_400(api_client):
    error = assert_error(api_client.post(LOGOUT_URL, {}, format="json"), 400, "validation_error")

    assert set(error["fields"]) == {"refresh"}


# Deactivation: every token of the user stops working


def test_the_stateless_verifier_accepts_a_live_token(staff, login):
    access = login(staff.email)["access"]

    user, token = verify_statelessly(access)

    assert isinstance(user, TokenUser)
    assert user.id == str(staff.id)
    assert user.is_staff is True
    assert token["email"] == staff.email


def test_deactivation_refuses_the_existing_access_token_at_identity(
    staff_client, customer, login, django_capture_on_commit_callbacks
):
    customer_me = bearer_client(login(customer.email)["access"])
    assert customer_me.get(ME_URL).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.patch(f"/api/v1/users/{customer.id}/", {"is_active": False}, format="json")
    assert response.status_code == 200

    assert_error(customer_me.get(ME_URL), 401, "user_inactive")


def test_deactivation_refuses_the_existing_access_token_in_other_services(
    customer, login, django_capture_on_commit_callbacks
):
    access = login(customer.email)["access"]
    user, _token = verify_statelessly(access)
    assert (user.id, user.is_staff) == (str(customer.id), False)

    deactivate(customer, django_capture_on_commit_callbacks)

    with pytest.raises(AuthenticationFailed) as refused:
        verify_statelessly(access)
    assert refused.value.detail["code"] == "token_revoked"


def test_deactivation_blacklists_every_refresh_token(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    first = login(customer.email)["refresh"]
    rotated = refresh(api_client, login(customer.email)["refresh"]).json()["refresh"]

    deactivate(customer, django_capture_on_commit_callbacks)

    outstanding = OutstandingToken.objects.filter(user=customer)
    assert outstanding.count() == 3
    assert BlacklistedToken.objects.filter(token__user=customer).count() == 3
    assert_error(refresh(api_client, first), 401, "token_not_valid")
    assert_error(refresh(api_client, rotated), 401, "token_not_valid")


def test_refresh_tokens_stay_refused_after_reactivation(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    old_refresh = login(customer.email)["refresh"]
    deactivate(customer, django_capture_on_commit_callbacks)

    services.user_update(user=customer, is_active=True)

    assert_error(refresh(api_client, old_refresh), 401, "token_not_valid")
    assert login(customer.email)["refresh"]  # a fresh login works again


def test_a_deactivated_user_cannot_log_in(api_client, customer, django_capture_on_commit_callbacks):
    deactivate(customer, django_capture_on_commit_callbacks)

    response = api_client.post(TOKEN_URL, {"email": customer.email, "password": PASSWORD}, format="json")

    assert_error(response, 401, "authentication_failed")


@pytest.mark.django_db(transaction=True)
def test_deactivation_revokes_tokens_once_really_committed(customer, login, revoked_user_ids):
    access = login(customer.email)["access"]

    services.user_update(user=customer, is_active=False)

    assert revoked_user_ids == [str(customer.id)]
    with pytest.raises(AuthenticationFailed):
        verify_statelessly(access)

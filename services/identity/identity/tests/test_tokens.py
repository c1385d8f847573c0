"""Tokens: the JWKS, signature and claim checks, sign-ins and refresh rotation, logout, and what a change
of access (demotion, promotion, deactivation, new password) does to tokens already issued, at identity
and in the services that verify tokens on their own (through the real Redis revocation list)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from identity import services
from identity.jwks import key_id
from identity.models import SignIn, User
from identity.tests.helpers import PASSWORD, TOKEN_URL, assert_error, bearer_client
from shared.auth.api import AccessTokenAuthentication, UserClaims
from shared.testing import access_token

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
    """What every other service does with a bearer token: `(user, claims)`, or AuthenticationFailed."""
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {access}"))
    return AccessTokenAuthentication().authenticate(request)


def refused_elsewhere(access: str) -> str:
    """The code another service refuses `access` with (fails if it is accepted)."""
    with pytest.raises(AuthenticationFailed) as refused:
        verify_statelessly(access)
    return refused.value.detail["code"]


def jwks_key(api_client) -> jwt.PyJWK:
    return jwt.PyJWK(api_client.get(JWKS_URL).json()["keys"][0])


def refresh(api_client, refresh_token: str):
    return api_client.post(REFRESH_URL, {"refresh": refresh_token}, format="json")


def committed(django_capture_on_commit_callbacks, change, **arguments):
    """Run a service change and its after-commit work (the revocation list is written then)."""
    with django_capture_on_commit_callbacks(execute=True):
        return change(**arguments)


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
    assert key["kid"] == key_id(settings.JWT["PUBLIC_KEY"])
    assert {"n", "e"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)  # never the private parts


def test_an_access_token_verifies_with_the_jwks_key_and_carries_the_claims(api_client, staff, login):
    access = login(staff.email)["access"]

    claims = jwt.decode(access, jwks_key(api_client).key, algorithms=["RS256"], issuer=settings.JWT["ISSUER"])

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
        jwt.decode(forged, jwks_key(api_client).key, algorithms=["RS256"], issuer=settings.JWT["ISSUER"])


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
    expired = access_token(user_id=str(customer.id), iat=int(time.time()) - 600, exp=int(time.time()) - 1)

    assert_error(bearer_client(expired).get(ME_URL), 401, "token_not_valid")


def test_a_refresh_token_is_not_an_access_token(customer, login):
    refresh_token = login(customer.email)["refresh"]

    assert_error(bearer_client(refresh_token).get(ME_URL), 401, "token_not_valid")
    assert refused_elsewhere(refresh_token) == "token_not_valid"


# Sign-ins and refresh rotation


def test_sign_in_records_a_sign_in_that_every_token_of_it_names(customer, login):
    tokens = login(customer.email)

    sign_in = SignIn.objects.get(user=customer)
    access, refresh_claims = unverified_claims(tokens["access"]), unverified_claims(tokens["refresh"])
    assert access["sid"] == refresh_claims["sid"] == str(sign_in.pk)
    assert (access["ver"], sign_in.kind, sign_in.refresh_jti) == (1, "api", refresh_claims["jti"])


def test_refresh_returns_a_new_access_and_a_new_refresh(api_client, customer, login):
    tokens = login(customer.email)

    response = refresh(api_client, tokens["refresh"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert unverified_claims(body["refresh"])["jti"] != unverified_claims(tokens["refresh"])["jti"]
    assert bearer_client(body["access"]).get(ME_URL).status_code == 200


def test_rotation_never_extends_the_sign_in(api_client, customer, login):
    first = login(customer.email)["refresh"]
    rotated = refresh(api_client, first).json()["refresh"]

    sign_in = SignIn.objects.get(user=customer)
    assert (
        unverified_claims(rotated)["exp"]
        == unverified_claims(first)["exp"]
        == int(sign_in.expires_at.timestamp())
    )


def test_an_expired_sign_in_cannot_be_refreshed(api_client, customer, login):
    tokens = login(customer.email)
    SignIn.objects.filter(user=customer).update(expires_at="2000-01-01T00:00:00Z")
    claims = unverified_claims(tokens["refresh"]) | {"exp": int(time.time()) - 1}
    expired = jwt.encode(claims, settings.JWT["SIGNING_KEY"], algorithm="RS256")

    assert_error(refresh(api_client, expired), 401, "token_not_valid")


def test_reusing_a_rotated_refresh_token_ends_the_whole_sign_in(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    first = login(customer.email)
    current = refresh(api_client, first["refresh"]).json()

    with django_capture_on_commit_callbacks(execute=True):
        assert_error(refresh(api_client, first["refresh"]), 401, "token_reused")  # a copy

    assert SignIn.objects.get(user=customer).end_reason == "refresh_reuse"
    assert_error(refresh(api_client, current["refresh"]), 401, "token_revoked")  # the owner's too
    assert_error(bearer_client(current["access"]).get(ME_URL), 401, "token_revoked")
    assert refused_elsewhere(current["access"]) == "token_revoked"
    assert login(customer.email)["access"]  # signing in again works


def test_other_sign_ins_of_the_user_survive_a_reuse(api_client, customer, login):
    other = login(customer.email)
    first = login(customer.email)["refresh"]
    refresh(api_client, first)
    refresh(api_client, first)  # reuse ends that sign-in only

    assert refresh(api_client, other["refresh"]).status_code == 200


def test_refresh_with_garbage_or_another_key_is_401(api_client, customer, login):
    claims = unverified_claims(login(customer.email)["refresh"])
    forged = jwt.encode(
        claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
    )

    assert_error(refresh(api_client, "not-a-token"), 401, "token_not_valid")
    assert_error(refresh(api_client, forged), 401, "token_not_valid")


def test_an_access_token_cannot_refresh(api_client, customer, login):
    assert_error(refresh(api_client, login(customer.email)["access"]), 401, "token_not_valid")


def test_a_deleted_users_refresh_token_is_401_not_500(api_client, customer, login):
    tokens = login(customer.email)
    User.objects.filter(pk=customer.pk).delete()

    assert_error(refresh(api_client, tokens["refresh"]), 401, "token_not_valid")
    assert_error(bearer_client(tokens["access"]).get(ME_URL), 401, "token_revoked")


# Logout


def test_logout_ends_the_sign_in_and_every_token_of_it(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    tokens = login(customer.email)
    other = login(customer.email)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(LOGOUT_URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert_error(refresh(api_client, tokens["refresh"]), 401, "token_revoked")
    assert_error(bearer_client(tokens["access"]).get(ME_URL), 401, "token_revoked")
    assert refused_elsewhere(tokens["access"]) == "token_revoked"
    assert verify_statelessly(other["access"])[0].id == str(customer.id)  # another sign-in goes on


def test_logout_with_garbage_is_401(api_client):
    assert_error(api_client.post(LOGOUT_URL, {"refresh": "garbage"}, format="json"), 401, "token_not_valid")


def test_logout_twice_is_harmless(api_client, customer, login):
    refresh_token = login(customer.email)["refresh"]
    assert api_client.post(LOGOUT_URL, {"refresh": refresh_token}, format="json").status_code == 204

    assert api_client.post(LOGOUT_URL, {"refresh": refresh_token}, format="json").status_code == 204


def test_logout_with_an_access_token_is_401(api_client, customer, login):
    access = login(customer.email)["access"]

    assert_error(api_client.post(LOGOUT_URL, {"refresh": access}, format="json"), 401, "token_not_valid")


def test_logout_without_a_refresh_token_is_400(api_client):
    error = assert_error(api_client.post(LOGOUT_URL, {}, format="json"), 400, "validation_error")

    assert set(error["fields"]) == {"refresh"}


# A change of access: tokens already issued stop working everywhere at once


def test_the_stateless_verifier_accepts_a_live_token(staff, login):
    access = login(staff.email)["access"]

    user, claims = verify_statelessly(access)

    assert isinstance(user, UserClaims)
    assert (user.id, user.is_staff, claims["email"]) == (str(staff.id), True, staff.email)


def test_a_demoted_member_of_staff_loses_staff_rights_at_once_and_refresh_tells_the_truth(
    api_client, staff, login, django_capture_on_commit_callbacks
):
    tokens = login(staff.email)
    assert bearer_client(tokens["access"]).get("/api/v1/users/").status_code == 200

    committed(django_capture_on_commit_callbacks, services.user_update, user=staff, is_staff=False)

    assert_error(bearer_client(tokens["access"]).get("/api/v1/users/"), 401, "token_revoked")
    assert refused_elsewhere(tokens["access"]) == "token_revoked"
    renewed = refresh(api_client, tokens["refresh"]).json()  # the sign-in goes on, as a customer
    claims = unverified_claims(renewed["access"])
    assert (claims["is_staff"], claims["roles"], claims["ver"]) == (False, ["customer"], 2)
    assert_error(bearer_client(renewed["access"]).get("/api/v1/users/"), 403, "permission_denied")
    user, _claims = verify_statelessly(renewed["access"])
    assert user.is_staff is False


def test_a_promotion_reaches_the_token_on_the_next_refresh(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    tokens = login(customer.email)
    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_staff=True)

    renewed = refresh(api_client, tokens["refresh"]).json()

    assert unverified_claims(renewed["access"])["roles"] == ["staff"]
    assert bearer_client(renewed["access"]).get("/api/v1/users/").status_code == 200


def test_deactivation_ends_every_sign_in_and_refuses_every_token(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    first, second = login(customer.email), login(customer.email)

    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=False)

    assert set(SignIn.objects.filter(user=customer).values_list("end_reason", flat=True)) == {
        "account_changed"
    }
    for tokens in (first, second):
        assert_error(refresh(api_client, tokens["refresh"]), 401, "token_revoked")
        assert_error(bearer_client(tokens["access"]).get(ME_URL), 401, "token_revoked")
        assert refused_elsewhere(tokens["access"]) == "token_revoked"


def test_reactivation_never_brings_old_tokens_back_at_identity_or_elsewhere(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    tokens = login(customer.email)
    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=False)

    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=True)

    assert_error(bearer_client(tokens["access"]).get(ME_URL), 401, "token_revoked")
    assert refused_elsewhere(tokens["access"]) == "token_revoked"
    assert_error(refresh(api_client, tokens["refresh"]), 401, "token_revoked")
    assert bearer_client(login(customer.email)["access"]).get(ME_URL).status_code == 200


def test_a_new_password_signs_the_user_out_everywhere(
    api_client, customer, login, django_capture_on_commit_callbacks
):
    tokens = login(customer.email)

    committed(
        django_capture_on_commit_callbacks,
        services.user_set_password,
        user=customer,
        password="new-" + PASSWORD,
    )

    assert_error(refresh(api_client, tokens["refresh"]), 401, "token_revoked")
    assert refused_elsewhere(tokens["access"]) == "token_revoked"
    assert login(customer.email, "new-" + PASSWORD)["access"]


def test_a_rename_withdraws_nothing(customer, login, django_capture_on_commit_callbacks):
    access = login(customer.email)["access"]

    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, full_name="Carla C.")

    assert verify_statelessly(access)[0].id == str(customer.id)
    assert User.objects.get(pk=customer.pk).auth_version == 1


def test_a_deactivated_user_cannot_log_in(api_client, customer, django_capture_on_commit_callbacks):
    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=False)

    response = api_client.post(TOKEN_URL, {"email": customer.email, "password": PASSWORD}, format="json")

    assert_error(response, 401, "authentication_failed")


@pytest.mark.django_db(transaction=True)
def test_revocations_are_published_only_once_really_committed(customer, login, published):
    access = login(customer.email)["access"]

    services.user_update(user=customer, is_active=False)

    assert f"auth:user-version:{customer.id}" in published
    assert refused_elsewhere(access) == "token_revoked"


def test_a_revocation_lost_to_a_redis_outage_is_published_by_the_sweep(
    customer, login, monkeypatch, django_capture_on_commit_callbacks, published
):
    access = login(customer.email)["access"]
    from shared.auth import revocation

    def unreachable(*args, **kwargs):
        raise revocation.redis.ConnectionError("Redis is away")

    with monkeypatch.context() as away:
        away.setattr(revocation.RevocationList, "publish_user_version", unreachable)
        away.setattr(revocation.RevocationList, "publish_sign_ins_ended", unreachable)
        committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=False)
    assert verify_statelessly(access)[0].id == str(customer.id)  # not yet known outside identity

    written = services.revocations_publish()

    assert written >= 2  # the user's version and the sign-in that ended
    assert refused_elsewhere(access) == "token_revoked"


def test_revocation_entries_last_as_long_as_the_longest_token(
    customer, login, django_capture_on_commit_callbacks
):
    login(customer.email)
    committed(django_capture_on_commit_callbacks, services.user_update, user=customer, is_active=False)

    from shared.auth.api import revocation_list

    ttl = revocation_list().redis.ttl(f"auth:user-version:{customer.id}")
    longest = max(settings.JWT["ACCESS_LIFETIME"].total_seconds(), settings.ADMIN_SSO["COOKIE_SECONDS"])
    assert longest < ttl <= longest + 60


# Service clients: the client-credentials grant


SERVICE_TOKEN_URL = "/internal/v1/oauth/token/"


@pytest.fixture
def orders_client(settings):
    settings.SERVICE_CLIENTS = {"orders": {"scopes": ["saga:read"], "secret": "s3cret-for-tests"}}


def grant(api_client, form: dict, **headers):
    """A token request as OAuth clients send it: an HTML form body (RFC 6749, 4.4.2)."""
    body = urlencode(form)
    return api_client.post(
        SERVICE_TOKEN_URL, body, content_type="application/x-www-form-urlencoded", **headers
    )


def test_a_service_gets_a_short_lived_token_with_its_scopes(api_client, orders_client):
    response = grant(
        api_client,
        {"grant_type": "client_credentials", "client_id": "orders", "client_secret": "s3cret-for-tests"},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["scope"], body["expires_in"]) == ("Bearer", "saga:read", 300)
    assert response["Cache-Control"] == "no-store"
    from shared.auth.api import verifier

    caller = verifier().service(body["access_token"])
    assert (caller.client_id, caller.scopes) == ("orders", {"saga:read"})
    assert_error(bearer_client(body["access_token"]).get(ME_URL), 401, "token_not_valid")  # not a user
    assert refused_elsewhere(body["access_token"]) == "token_not_valid"


def test_a_service_may_authenticate_with_http_basic_and_json(api_client, orders_client):
    basic = base64.b64encode(b"orders:s3cret-for-tests").decode()
    response = api_client.post(
        SERVICE_TOKEN_URL, {"grant_type": "client_credentials", "scope": "saga:read"}, format="json",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )  # fmt: skip

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"client_id": "orders", "client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "payments", "client_secret": "s3cret-for-tests"}, 401, "invalid_client"),
        (
            {"client_id": "orders", "client_secret": "s3cret-for-tests", "scope": "users:write"},
            403,
            "invalid_scope",
        ),
        (
            {"client_id": "orders", "client_secret": "s3cret-for-tests", "grant_type": "password"},
            400,
            "validation_error",
        ),
    ],
)
def test_the_grant_refuses_wrong_clients_secrets_scopes_and_grants(
    api_client, orders_client, form, status, code
):
    response = grant(api_client, {"grant_type": "client_credentials"} | form)

    assert_error(response, status, code)


def test_a_users_token_is_no_service_credential(api_client, orders_client, customer, login):
    access = login(customer.email)["access"]
    response = grant(api_client, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Bearer {access}")

    assert_error(response, 401, "invalid_client")


def test_a_token_minted_by_the_old_version_of_a_user_is_refused_even_with_a_new_sign_in_id(customer, login):
    """The version, not the sign-in, carries a change of access: a forged sid does not help."""
    claims = unverified_claims(login(customer.email)["access"])
    User.objects.filter(pk=customer.pk).update(auth_version=5)
    forged_sid = access_token(user_id=str(customer.id), ver=claims["ver"], sid=str(uuid.uuid4()))

    assert_error(bearer_client(forged_sid).get(ME_URL), 401, "token_revoked")

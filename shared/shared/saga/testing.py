"""For tests of `GET /internal/v1/saga/<order_id>/` (every service's suite) and of callers of `/internal/`
routes: service tokens as identity's grant issues them, and the checks every service's part must pass."""

from __future__ import annotations

import time
import uuid

from shared.saga import SAGA_SCOPE
from shared.testing import _signing_key, access_token, assert_error, bearer_client, openapi_errors

SAGA_PART_URL = "/internal/v1/saga/{order_id}/"
SAGA_PART_PATH = "/internal/v1/saga/{order_id}/"  # the path template of the OpenAPI document


def signed_service_token(
    *, client_id: str = "orders", scope: str = SAGA_SCOPE, lifetime_seconds: int = 300, **claims
) -> str:
    """A service token exactly like identity's client-credentials grant issues (identity.tokens), signed
    with the local private key. `claims` adds or replaces claims."""
    import jwt
    from django.conf import settings

    now = int(time.time())
    claims = {
        "aud": "platform-services",
        "token_type": "service",
        "sub": f"service:{client_id}",
        "client_id": client_id,
        "scope": scope,
        "exp": now + lifetime_seconds,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "iss": settings.JWT["ISSUER"],
    } | claims
    return jwt.encode(claims, _signing_key(), algorithm="RS256")


def saga_part(order_id) -> dict:
    """The service's part of the order's saga, asked as orders asks for it (scope saga:read); asserts 200."""
    response = bearer_client(signed_service_token()).get(SAGA_PART_URL.format(order_id=order_id))
    assert response.status_code == 200, response.content
    return response.json()


def assert_saga_part_is_for_services_only(order_id) -> None:
    """A service token without the scope is a 403; a customer's or staff's access token, a token of no
    kind and no token at all are a 401; every refusal in the contract's error shape."""
    from rest_framework.test import APIClient

    url = SAGA_PART_URL.format(order_id=order_id)
    assert_error(bearer_client(signed_service_token(scope="")).get(url), 403, "insufficient_scope")
    for user in (
        access_token(user_id=str(uuid.uuid4())),
        access_token(user_id=str(uuid.uuid4()), is_staff=True),
    ):
        assert_error(bearer_client(user).get(url), 401, "token_not_valid")
    assert_error(bearer_client("not-a-token").get(url), 401, "token_not_valid")
    assert_error(APIClient().get(url), 401, "not_authenticated")


def saga_part_schema_errors(body: dict) -> list[str]:
    """How a saga part breaks the service's own OpenAPI document (empty when it matches)."""
    from rest_framework.test import APIClient

    document = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return openapi_errors(document, body, path=SAGA_PART_PATH)

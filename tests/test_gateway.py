"""The gateway (nginx + gateway/verifier.py) as clients and operators meet it, on the e2e instance's port.

Tokens for the set-up are taken from identity directly, so the gateway's login rate limit is only
spent by the tests that are about it.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import jwt
import pytest

from tests.conftest import ROOT

GATEWAY_401_MESSAGE = "A valid access token is required."  # the edge's own answer, not a service's


def _login(platform, http, email: str, password: str) -> str:
    answer = http.post(
        platform.url("identity", "/api/v1/auth/token/"),
        json={"email": email, "password": password},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access"]


def _new_user(platform, http) -> str:
    """A freshly registered customer's access token."""
    email, password = f"gw-{uuid.uuid4().hex[:10]}@example.com", "a-long-enough-pass-42"
    registered = http.post(
        platform.url("identity", "/api/v1/auth/register/"),
        json={"email": email, "password": password, "full_name": "Gateway Test"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    return _login(platform, http, email, password)


@pytest.fixture(scope="module")
def tokens(platform):
    import requests

    http = requests.Session()
    http.trust_env = False
    return {
        "staff": _login(platform, http, "staff@example.com", "staff-demo-pass-1"),
        "customer": _login(platform, http, "customer@example.com", "customer-demo-pass-1"),
    }


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _assert_error_shape(answer, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if code is not None:
        assert error["code"] == code, error
    return error


def _product_id(platform, http) -> str:
    return http.get(platform.gateway_url("/api/v1/products/"), timeout=10).json()["results"][0]["id"]


# --- routing -------------------------------------------------------------------------------------------


def test_every_contract_route_answers_through_the_gateway(platform, http, tokens):
    product = _product_id(platform, http)
    staff = _bearer(tokens["staff"])
    routes = [
        ("GET", "/.well-known/jwks.json", {}),
        ("POST", "/api/v1/auth/token/refresh/", {}),
        ("GET", "/api/v1/auth/me/", staff),
        ("GET", "/api/v1/users/", staff),
        ("GET", "/api/v1/products/", {}),
        ("GET", f"/api/v1/products/{product}/", {}),
        ("GET", f"/api/v2/products/{product}/", {}),
        ("GET", "/api/v1/categories/", {}),
        ("GET", f"/api/v1/stock/{product}/", staff),
        ("GET", "/api/v1/orders/", staff),
        ("GET", "/api/v1/cart/", staff),
        ("GET", "/api/v1/payments/", staff),
        ("GET", "/api/v1/notifications/", staff),
    ]
    for method, path, headers in routes:
        answer = http.request(method, platform.gateway_url(path), headers=headers, json={}, timeout=10)
        assert answer.status_code not in (404, 502, 503, 504), (path, answer.status_code, answer.text)
        assert answer.status_code < 500, (path, answer.text)
    for service in platform.services:
        schema = http.get(platform.gateway_url(f"/api/schema/{service}/"), timeout=10)
        assert schema.status_code == 200 and "openapi" in schema.text, service
    docs = http.get(platform.gateway_url("/docs/"), timeout=10)
    assert docs.status_code == 200 and all(f"/api/schema/{s}/" in docs.text for s in platform.services)


def test_request_id_is_created_at_the_edge_or_kept(platform, http):
    made = http.get(platform.gateway_url("/api/v1/categories/"), timeout=10)
    assert len(made.headers["X-Request-ID"]) == 32  # nginx's $request_id
    kept = http.get(
        platform.gateway_url("/api/v1/categories/"), headers={"X-Request-ID": "gw-test-1"}, timeout=10
    )
    assert kept.headers["X-Request-ID"] == "gw-test-1"
    assert kept.headers.get("X-Content-Type-Options") == "nosniff"
    assert kept.headers.get("X-Frame-Options") == "DENY"
    assert "Referrer-Policy" in kept.headers
    assert "nginx/" not in kept.headers.get("Server", "")  # server_tokens off


def test_internal_paths_are_not_exposed(platform, http):
    for path in ("/metrics", "/health/ready", "/health/live", "/admin/", "/api/schema/", "/anything"):
        _assert_error_shape(http.get(platform.gateway_url(path), timeout=10), 404, "not_found")


# --- edge authentication -------------------------------------------------------------------------------


def _private_key() -> str:
    return (ROOT / "var" / "keys" / "jwt-private.pem").read_text()


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "token_type": "access", "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex,
        "user_id": str(uuid.uuid4()), "is_staff": True, "roles": ["staff"], "iss": "order-platform-identity",
    }  # fmt: skip
    return claims | overrides


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(valid: str) -> dict[str, str]:
    header, _payload, signature = valid.split(".")
    claims = jwt.decode(valid, options={"verify_signature": False})
    now = int(time.time())
    return {
        "expired": jwt.encode(_claims(iat=now - 600, exp=now - 300), _private_key(), algorithm="RS256"),
        "tampered": f"{header}.{_b64(claims | {'is_staff': True, 'roles': ['staff']})}.{signature}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "garbage": "not-a-token",
    }


def test_edge_refuses_missing_expired_tampered_and_unsigned_tokens(platform, http, tokens):
    url = platform.gateway_url("/api/v1/orders/")
    # A forged identity header without a token does not get past the edge either.
    answers = {"missing": http.get(url, headers={"X-User-Id": str(uuid.uuid4())}, timeout=10)}
    for name, token in _bad_tokens(tokens["customer"]).items():
        answers[name] = http.get(url, headers=_bearer(token), timeout=10)
    for name, answer in answers.items():
        error = _assert_error_shape(answer, 401, "not_authenticated")
        assert error["message"] == GATEWAY_401_MESSAGE, name  # the gateway answered, not orders
        assert answer.headers["WWW-Authenticate"] == "Bearer", name


def test_forged_identity_headers_are_ignored(platform, http, tokens):
    forged = {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "staff"}
    refused = http.get(
        platform.gateway_url("/flower/"), headers=_bearer(tokens["customer"]) | forged, timeout=10
    )
    _assert_error_shape(refused, 403, "permission_denied")
    own = http.get(
        platform.gateway_url("/api/v1/orders/"), headers=_bearer(tokens["customer"]) | forged, timeout=10
    )
    assert own.status_code == 200, own.text


def test_flower_is_for_staff_only(platform, http, tokens):
    _assert_error_shape(http.get(platform.gateway_url("/flower/"), timeout=10), 401)
    customer = http.get(platform.gateway_url("/flower/"), headers=_bearer(tokens["customer"]), timeout=10)
    _assert_error_shape(customer, 403)
    staff = http.get(platform.gateway_url("/flower/"), headers=_bearer(tokens["staff"]), timeout=10)
    assert staff.status_code == 200 and "Flower" in staff.text
    # An API token in a cookie is no credential (browsers reach Flower with the admin sign-on cookie).
    cookie = http.get(platform.gateway_url("/flower/"), cookies={"access_token": tokens["staff"]}, timeout=10)
    _assert_error_shape(cookie, 401)


# --- bodies --------------------------------------------------------------------------------------------


def test_malformed_json_and_oversized_bodies_get_clear_4xx(platform, http, tokens):
    url = platform.gateway_url("/api/v1/cart/items/")
    headers = _bearer(tokens["staff"]) | {"Content-Type": "application/json"}
    _assert_error_shape(
        http.post(url, data="{not json", headers=headers, timeout=10), 400, "malformed_request"
    )
    oversized = http.post(url, data=b"x" * (2 * 1024 * 1024), headers=headers, timeout=30)
    _assert_error_shape(oversized, 413, "payload_too_large")


# --- rate limits ---------------------------------------------------------------------------------------


def test_login_attempts_are_rate_limited(platform, http):
    url = platform.gateway_url("/api/v1/auth/token/")
    body = {"email": "nobody@example.com", "password": "wrong-password-1"}
    answers = [http.post(url, json=body, timeout=10) for _ in range(10)]
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited, [answer.status_code for answer in answers]
    _assert_error_shape(limited[0], 429, "rate_limited")
    assert int(limited[0].headers["Retry-After"]) >= 1


def _flood(port: int, path: str, source: str, *, refusals: int, limit: int) -> list[dict]:
    """GETs from `source` over keep-alive connections, 8 at a time, until at least `refusals` were 429
    or `limit` requests were sent. Returns the 429 answers (status, headers, body)."""
    limited: list[dict] = []
    sent = itertools.count()

    def client() -> None:
        connection = HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
        try:
            while len(limited) < refusals and next(sent) < limit:
                connection.request("GET", path)
                answer = connection.getresponse()
                body = answer.read()
                if answer.status == 429:
                    limited.append({"headers": dict(answer.getheaders()), "body": body})
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: client(), range(8)))
    return limited


def test_one_address_flooding_is_limited_while_another_address_is_served(platform, http):
    # The suite runs with a per-address limit of 100r/s, burst 300 (conftest.GATEWAY_LIMITS): every one
    # of its requests comes from 127.0.0.1. The flood comes from 127.0.0.2, loopback too.
    limited = _flood(platform.gateway_port, "/docs/", "127.0.0.2", refusals=50, limit=5000)
    assert len(limited) >= 50, f"{len(limited)} requests refused out of 5000 from one address"
    assert json.loads(limited[0]["body"])["error"]["code"] == "rate_limited"
    assert int(limited[0]["headers"]["Retry-After"]) >= 1
    # The flooding address has spent its own budget, not the gateway's: another address is served.
    assert http.get(platform.gateway_url("/docs/"), timeout=10).status_code == 200


def test_order_creation_is_rate_limited_per_verified_user(platform, http):
    first, second = _new_user(platform, http), _new_user(platform, http)
    url = platform.gateway_url("/api/v1/orders/")
    # Invalid bodies: counted by the gateway like any order, refused by orders, so no saga starts.
    answers = [http.post(url, json={}, headers=_bearer(first), timeout=10) for _ in range(8)]
    statuses = [answer.status_code for answer in answers]
    assert 429 in statuses and 400 in statuses, statuses
    _assert_error_shape(answers[statuses.index(429)], 429, "rate_limited")
    assert "Retry-After" in answers[statuses.index(429)].headers
    other = http.post(url, json={}, headers=_bearer(second), timeout=10)
    assert other.status_code == 400, other.text  # a second user has their own budget
    # Reads are not limited per user.
    assert http.get(url, headers=_bearer(first), timeout=10).status_code == 200


# --- health --------------------------------------------------------------------------------------------


def test_health_lists_every_service_and_turns_degraded_when_one_stops(platform, http):
    answer = http.get(platform.gateway_url("/health"), timeout=10).json()
    assert answer["status"] == "healthy", answer
    assert set(answer["services"]) == set(platform.services)
    stopped = platform.supervisorctl("stop", "catalog-web")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        degraded = http.get(platform.gateway_url("/health"), timeout=10)
        assert degraded.status_code == 200
        report = degraded.json()
        assert report["status"] == "degraded", report
        assert report["services"]["catalog"]["status"] == "unreachable"
        assert report["services"]["identity"]["status"] == "healthy"
        _assert_error_shape(http.get(platform.gateway_url("/api/v1/categories/"), timeout=10), 502)
    finally:
        platform.supervisorctl("start", "catalog-web")

"""What an attacker found beyond the matrix, kept fixed: sign-in sessions, rate-limit gaps, secrets, Flower's
own port, and requests at the edges (nesting, Host, size, nginx's own errors) answered in the error shape.
Floods come from other loopback addresses (127.0.0.2, .3, .4) so they spend their own budgets only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from base64 import b64encode

import jwt
import pytest
import requests

from tests.addresses import from_address, until_limited
from tests.admin_session import SSO_COOKIE, STAFF, browser_session, csrf_token, origin, signed_in_session
from tests.conftest import ROOT
from tests.security.callers import new_user, patch_user, sign_in
from tests.shop import Shop

SERVICES = ("identity", "catalog", "inventory", "orders", "payments", "notifications")


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


def assert_error(status_and_more, status: int, code: str) -> None:
    got, _headers, body = status_and_more
    assert got == status, (got, body)
    assert body["error"]["code"] == code, body
    assert {"code", "message", "fields"} <= set(body["error"]), body


# --- sign-in sessions --------------------------------------------------------------------------------------


def test_logout_ends_every_cookie_the_sign_in_was_given(platform):
    session = signed_in_session(platform, STAFF)
    first = session.cookies[SSO_COOKIE]
    again = session.get(platform.gateway_url("/admin/identity/login/?next=/admin/catalog/"), timeout=10)
    assert again.url == platform.gateway_url("/admin/catalog/")
    second = session.cookies[SSO_COOKIE]
    assert second != first

    confirm = session.get(platform.gateway_url("/admin/identity/logout/"), timeout=10)
    logout = session.post(
        platform.gateway_url("/admin/identity/logout/"), data={"csrfmiddlewaretoken": csrf_token(confirm)},
        headers=origin(platform), timeout=10,
    )  # fmt: skip
    assert logout.status_code == 200

    for cookie in (first, second):
        visitor = browser_session()
        visitor.cookies.set(SSO_COOKIE, cookie)
        for service in ("payments", "orders"):
            page = visitor.get(platform.gateway_url(f"/admin/{service}/"), allow_redirects=False, timeout=10)
            assert page.status_code == 302 and "/login/" in page.headers["Location"], (
                service,
                page.status_code,
            )
        flower = visitor.get(platform.gateway_url("/flower/"), timeout=10)
        assert flower.status_code == 401


def test_a_demoted_member_of_staff_loses_staff_rights_at_once_and_flower_with_them(platform, shop):
    user = new_user(shop)
    patch_user(shop, user["id"], is_staff=True)
    tokens = sign_in(shop, user["email"])
    bearer = {"Authorization": f"Bearer {tokens['access']}"}
    http = browser_session()
    assert http.get(platform.gateway_url("/flower/"), headers=bearer, timeout=10).status_code == 200
    assert http.get(platform.gateway_url("/api/v1/users/"), headers=bearer, timeout=10).status_code == 200

    patch_user(shop, user["id"], is_staff=False)

    for path in ("/flower/", "/api/v1/users/", "/api/v1/orders/"):
        refused = http.get(platform.gateway_url(path), headers=bearer, timeout=10)
        assert refused.status_code == 401, (path, refused.status_code)
    renewed = http.post(
        platform.gateway_url("/api/v1/auth/token/refresh/"), json={"refresh": tokens["refresh"]}
    )
    assert renewed.status_code == 200, renewed.text
    claims = jwt.decode(renewed.json()["access"], options={"verify_signature": False})
    assert (claims["is_staff"], claims["roles"]) == (False, ["customer"])
    now = {"Authorization": f"Bearer {renewed.json()['access']}"}
    assert http.get(platform.gateway_url("/flower/"), headers=now, timeout=10).status_code == 403
    assert http.get(platform.gateway_url("/api/v1/users/"), headers=now, timeout=10).status_code == 403


def test_refresh_token_reuse_ends_the_sign_in_for_the_thief_and_the_owner(platform, shop):
    user = new_user(shop)
    http = browser_session()
    url = platform.gateway_url("/api/v1/auth/token/refresh/")
    stolen = user["refresh"]
    owner = http.post(url, json={"refresh": stolen}, timeout=10).json()

    thief = http.post(url, json={"refresh": stolen}, timeout=10)

    assert thief.status_code == 401 and thief.json()["error"]["code"] == "token_reused"
    assert http.post(url, json={"refresh": owner["refresh"]}, timeout=10).status_code == 401
    me = http.get(
        platform.gateway_url("/api/v1/auth/me/"), headers={"Authorization": f"Bearer {owner['access']}"}
    )
    assert me.status_code == 401


# --- rate limits --------------------------------------------------------------------------------------------


def test_refresh_has_a_budget_of_its_own_apart_fromsign_in(platform):
    port = platform.gateway_port
    sign_ins = until_limited(
        "127.0.0.2", port, "POST", "/api/v1/auth/token/", {"email": "x@example.com", "password": "y"}
    )
    assert sign_ins[-1] == 429, sign_ins

    refresh = from_address("127.0.0.2", port, "POST", "/api/v1/auth/token/refresh/", {"refresh": "garbage"})
    assert_error(refresh, 401, "token_not_valid")  # still answered: not the sign-in budget
    refreshes = until_limited(
        "127.0.0.2", port, "POST", "/api/v1/auth/token/refresh/", {"refresh": "garbage"}
    )
    assert refreshes[-1] == 429 and len(refreshes) > 5, refreshes  # a limit, and a larger one


def test_checkout_spends_the_same_per_user_order_budget_as_order_creation(platform, shop):
    first, second = shop.new_customer(), shop.new_customer()
    http = browser_session()

    def post(path: str, token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return http.post(platform.gateway_url(path), json={}, headers=headers, timeout=10).status_code

    statuses = [post("/api/v1/orders/", first) for _ in range(4)] + [post("/api/v1/cart/checkout/", first)]
    assert 429 in statuses, statuses
    assert post("/api/v1/cart/checkout/", second) == 400  # another user's own budget


@pytest.mark.parametrize("service", ["catalog", "identity"])
def test_every_admin_login_form_is_limited_per_address(platform, service):
    source = {"catalog": "127.0.0.3", "identity": "127.0.0.4"}[service]
    statuses = until_limited(
        source, platform.gateway_port, "POST", f"/admin/{service}/login/?local=1", {}, most=300
    )

    assert statuses[-1] == 429, statuses[-5:]
    limited = from_address(source, platform.gateway_port, "POST", f"/admin/{service}/login/", {})
    assert_error(limited, 429, "rate_limited")
    assert int(limited[1]["Retry-After"]) >= 1


# --- Flower's own port, secrets -----------------------------------------------------------------------------


def instance_secrets(platform) -> dict:
    return json.loads((ROOT / "var" / platform.env["PLATFORM_INSTANCE"] / "secrets.json").read_text())


def test_flower_on_its_own_port_asks_for_its_password(platform, shop):
    flower_port = platform.model("platform.instance.port(platform.topology.flower_port)")
    flower = f"http://127.0.0.1:{flower_port}/flower/"
    http = browser_session()
    assert http.get(flower, timeout=10).status_code == 401
    assert http.get(flower, headers={"Authorization": f"Bearer {shop.staff}"}, timeout=10).status_code == 401
    password = instance_secrets(platform)["flower.password"]
    basic = b64encode(f"flower:{password}".encode()).decode()
    assert http.get(flower, headers={"Authorization": f"Basic {basic}"}, timeout=10).status_code == 200


def process_environment(platform, program: str) -> dict[str, str]:
    pid = platform.supervisorctl("pid", program).stdout.strip()
    assert pid.isdigit() and pid != "0", (program, pid)
    raw = open(f"/proc/{pid}/environ", "rb").read()  # noqa: SIM115 (read whole, closed at once)
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def test_only_identity_holds_the_signing_key_and_each_service_its_own_secret_key(platform):
    secret_keys = {}
    for service in SERVICES:
        for role in ("web", "worker", "beat"):
            env = process_environment(platform, f"{service}-{role}")
            holds_key = "JWT_PRIVATE_KEY_FILE" in env or "JWT_PRIVATE_KEY" in env
            assert holds_key == (service == "identity"), (service, role)
            assert len(env["SECRET_KEY"]) >= 32 and "insecure" not in env["SECRET_KEY"], (service, role)
            secret_keys.setdefault(service, set()).add(env["SECRET_KEY"])
    assert all(len(keys) == 1 for keys in secret_keys.values())  # one per service, in all its processes
    assert len({next(iter(keys)) for keys in secret_keys.values()}) == len(SERVICES)  # none shared
    verifier = process_environment(platform, "gateway-verifier")
    assert "JWT_PRIVATE_KEY_FILE" not in verifier and "JWT_PRIVATE_KEY" not in verifier


@pytest.mark.parametrize(
    ("service", "missing"),
    [
        ("catalog", "SECRET_KEY"),
        ("orders", "SERVICE_CLIENT_SECRET"),
        ("identity", "SERVICE_CLIENT_SECRET_ORDERS"),
        ("orders", "CATALOG_URL"),  # where its downstreams are: no topology.toml to guess from
        ("payments", "PAYMENT_PROVIDER_URL"),
    ],
)
def test_a_service_refuses_to_start_without_its_secrets_when_debug_is_off(platform, service, missing):
    env = platform.model(f"environment.service_env(platform, {service!r})")
    env.pop(missing)
    env.pop("DEBUG", None)

    started = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT / "services" / service, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert started.returncode != 0
    assert f"{missing} is not set" in started.stderr, started.stderr[-2000:]


# --- requests at the edges ----------------------------------------------------------------------------------


def test_deeply_nested_json_an_unknown_host_and_oversized_bodies_answer_in_the_error_shape(platform):
    http = requests.Session()
    http.trust_env = False
    nested = '{"refresh": ' + "[" * 1000 + "]" * 1000 + "}"
    for path in ("/api/v1/auth/logout/", "/api/v1/auth/register/"):
        answer = http.post(
            platform.gateway_url(path), data=nested, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "malformed_request", (
            answer.text
        )

    host = http.get(platform.gateway_url("/api/v1/products/"), headers={"Host": "evil.example"}, timeout=10)
    assert host.status_code == 400 and host.json()["error"]["code"] == "invalid_host", host.text

    big = http.post(platform.gateway_url("/api/v1/auth/register/"), data=b"x" * (2 * 1024 * 1024), timeout=30)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"


def test_nginx_s_own_refusal_of_a_malformed_request_is_json(platform):
    with socket.create_connection(("127.0.0.1", platform.gateway_port), timeout=10) as raw:
        raw.sendall(b"GET /api/v1/products/ HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n")
        answer = raw.recv(65536).decode(errors="replace")

    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400"), head
    assert "application/json" in head
    assert json.loads(body)["error"]["code"] == "malformed_request", body


@pytest.mark.parametrize(
    ("request_line", "status", "code"),
    [
        # Longer than the gateway's buffers (large_client_header_buffers): nginx could not read the line.
        (b"GET /api/v1/products/?ids=" + b"%2C" * 3000 + b" HTTP/1.1", 414, "uri_too_long"),
        (b"GET\x01 /api/v1/products/ HTTP/1.1", 400, "malformed_request"),
    ],
)
def test_a_request_line_nginx_cannot_read_is_refused_in_json(platform, request_line, status, code):
    """Refused while nginx reads the request line: it once sent its own HTML 500 for these (a named
    error location cannot take a request without a URI); the fuzzer found it with a long `ids`."""
    with socket.create_connection(("127.0.0.1", platform.gateway_port), timeout=10) as raw:
        raw.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        answer = raw.recv(65536).decode(errors="replace")

    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}"), head
    assert "application/json" in head
    assert json.loads(body)["error"]["code"] == code, body


def test_the_gateway_s_error_pages_cannot_be_requested_from_outside(platform):
    """They are internal locations (`internal;`): only nginx's own error handling reaches them."""
    http = requests.Session()
    http.trust_env = False
    for path in ("/_errors/500", "/_errors/403", "/_auth/strict"):
        answer = http.get(platform.gateway_url(path), timeout=10)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
        assert answer.json()["error"]["code"] == "not_found"

"""The revocation list's policy when Redis cannot be asked, through real nginx: a copy of the gateway in
front of the e2e services asks a verifier of its own whose Redis is a port where nothing listens. Staff
are refused with a fast 503 (fail closed); a customer's valid token still reaches the API (fail open,
bounded by the token's minutes). docs/security.md, "When Redis hangs or is down"."""

from __future__ import annotations

import time

import requests

from gateway import render
from tests.conftest import ROOT
from tests.security.copies import free_port, gateway_copy, nginx_command, running
from tests.shop import Shop


def test_without_redis_staff_get_a_fast_503_and_customers_their_api(platform, gateway_dir):
    shop = Shop(platform)
    verifier_port = free_port()
    verifier_env = {
        **platform.env,
        "JWT_PUBLIC_KEY_FILE": str(ROOT / "var" / "keys" / "jwt-public.pem"),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "GATEWAY_SERVICES": ",".join(platform.services),
    }
    verifier = render.verifier_command(f"127.0.0.1:{verifier_port}", str(ROOT / ".venv" / "bin" / "gunicorn"))
    conf, port = gateway_copy(platform, gateway_dir, verifier_port=verifier_port)
    http = requests.Session()
    http.trust_env = False

    with (
        running(verifier, cwd=ROOT, env=verifier_env, port=verifier_port, log_dir=gateway_dir),
        running(nginx_command(conf), cwd=gateway_dir, env=platform.env, port=port) as gateway,
    ):
        started = time.monotonic()
        staff = http.get(f"{gateway}/flower/", headers={"Authorization": f"Bearer {shop.staff}"}, timeout=10)
        elapsed = time.monotonic() - started
        customer = shop.new_customer()
        orders = http.get(
            f"{gateway}/api/v1/orders/", headers={"Authorization": f"Bearer {customer}"}, timeout=10
        )

    assert staff.status_code == 503, staff.text
    assert staff.json()["error"]["code"] == "service_unavailable"
    assert staff.headers["Retry-After"] == "5"
    assert elapsed < 1.0, elapsed
    assert orders.status_code == 200, orders.text

"""The platform as a developer runs it: manage_all.py up, supervised processes, identity over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

import jwt
import pytest

from shared.messaging import topology
from shared.testing import BrokerObserver, answers_ok, wait_until
from tests.conftest import ROOT


def _pid(platform, program: str) -> int | None:
    """The program's PID while supervisord says it is RUNNING."""
    state, pid = platform.processes()[program]
    return pid if state == "RUNNING" else None


def test_every_service_reports_healthy(platform, http):
    for service in platform.services:
        answer = http.get(platform.url(service, "/health/ready"), timeout=5).json()
        assert answer["status"] == "healthy", answer
        assert {name: check["status"] for name, check in answer["checks"].items()} == {
            "database": "up", "broker": "up", "cache": "up",
        }  # fmt: skip


def test_up_twice_is_harmless(platform, http):
    pid_before = _pid(platform, "identity-web")
    again = platform.manage_all("up", "--no-install")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _pid(platform, "identity-web") == pid_before  # nothing was restarted
    assert http.get(platform.url("identity", "/health/ready"), timeout=5).json()["status"] == "healthy"


def test_demo_logins_are_printed_and_work(platform, http):
    output = platform.manage_all("up", "--no-install").stdout
    assert "staff@example.com" in output and "customer@example.com" in output
    answer = http.post(
        platform.url("identity", "/api/v1/auth/token/"),
        json={"email": "staff@example.com", "password": "staff-demo-pass-1"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert jwt.decode(answer.json()["access"], options={"verify_signature": False})["is_staff"] is True


def test_registration_over_http_publishes_user_registered_through_the_outbox(platform, http):
    observer = BrokerObserver(platform.broker_url, topology.events_exchange, ["user.registered"])
    try:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        answer = http.post(
            platform.url("identity", "/api/v1/auth/register/"),
            json={"email": email, "password": "a-long-enough-pass-42", "full_name": "End To End"},
            headers={"X-Request-ID": "e2e-registration"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        assert answer.headers["X-Request-ID"] == "e2e-registration"
        observer.wait_for(1)
        (envelope,) = observer.envelopes()
        assert envelope["type"] == "user.registered" and envelope["source"] == "identity"
        assert envelope["data"]["user_id"] == answer.json()["id"]
        assert envelope["correlation_id"] == "e2e-registration"
    finally:
        observer.close()


def test_tokens_verify_against_the_published_jwks(platform, http):
    tokens = http.post(
        platform.url("identity", "/api/v1/auth/token/"),
        json={"email": "customer@example.com", "password": "customer-demo-pass-1"},
        timeout=10,
    ).json()
    keys = http.get(platform.url("identity", "/.well-known/jwks.json"), timeout=5).json()["keys"]
    claims = jwt.decode(
        tokens["access"], jwt.PyJWK(keys[0]).key, algorithms=["RS256"], options={"verify_iss": False}
    )
    assert claims["email"] == "customer@example.com" and claims["roles"] == ["customer"]


@pytest.mark.parametrize("program", ["identity-worker", "identity-web"])
def test_a_killed_process_is_restarted_by_the_supervisor(platform, http, program):
    pid = wait_until(lambda: _pid(platform, program), timeout=30, message=f"{program} running")
    os.kill(pid, signal.SIGKILL)

    new_pid = wait_until(
        lambda: (p := _pid(platform, program)) and p != pid and p, timeout=60, message=f"{program} restarted"
    )
    assert new_pid != pid
    ready = platform.url("identity", "/health/ready")
    wait_until(lambda: answers_ok(http, ready), timeout=60, message="identity healthy again")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("BROKER_URL", "amqp://guest:guest@127.0.0.1:{port}//", "RabbitMQ"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "Redis"),
        ("POSTGRES_PORT", "{port}", "Postgres"),
    ],
)
def test_up_says_which_infrastructure_is_unreachable_and_how_to_point_at_it(variable, value, named):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PLATFORM_INSTANCE": "unreachable", variable: value.format(port=port)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "up", "--no-install"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{named} is not reachable at 127.0.0.1:{port}" in output
    assert variable in output
    assert "Traceback" not in output

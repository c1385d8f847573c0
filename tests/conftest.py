"""Cross-service tests: they start an isolated copy of the platform with manage_all.py and use it
as clients and operators do, over HTTP and through the broker.

The copy is the `e2e` instance (PLATFORM_INSTANCE=e2e): every port shifted by 1000, its own databases,
RabbitMQ vhost and Redis database, so it runs beside a developer's own running platform. E2E_INSTANCE,
E2E_PORT_OFFSET and E2E_REDIS_DB choose another copy, so that two runs of this suite can go side by side.
E2E_SCALE (e.g. "catalog=2,orders=2") runs the whole suite with that many web instances of those services:
every `up` the tests run passes it on as `--scale`. E2E_KEEP=1 leaves the instance running at the end, so
that running one file again starts in seconds (`manage_all.py down` with PLATFORM_INSTANCE=e2e stops it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from devtools import topology

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = os.environ.get("E2E_INSTANCE", "e2e")
PORT_OFFSET = int(os.environ.get("E2E_PORT_OFFSET", "1000"))
REDIS_DB = os.environ.get("E2E_REDIS_DB", "1")
SCALE_ARGUMENTS = tuple(
    argument
    for item in os.environ.get("E2E_SCALE", "").split(",")
    if item.strip()
    for argument in ("--scale", item.strip())
)

# Saga deadlines short enough to watch them pass in a test, in the order the design needs:
# the payment deadline falls before the reservation expires.
SAGA_TIMINGS = {
    "RESERVATION_TTL_SECONDS": "12",
    "RESERVATION_SWEEP_SECONDS": "1",
    "PAYMENT_DEADLINE_SECONDS": "6",
    "PAYMENT_SWEEP_SECONDS": "0.5",
    "PROVIDER_TIMEOUT_SECONDS": "1",
    "PROVIDER_BREAKER_RESET_SECONDS": "2",
    "PROVIDER_BREAKER_FAIL_MAX": "2",
    "OUTBOX_SWEEP_SECONDS": "1",
    "NOTIFICATION_SWEEP_SECONDS": "2",
}

# Gateway limits small enough to cross in a test (gateway/render.py reads them when `up` renders nginx).
# The per-address limit is raised instead: every request of the suite comes from one address, at times
# faster than one client would (test_gateway floods from a second address to cross it).
GATEWAY_LIMITS = {
    "GATEWAY_ORDER_RATE": "1r/s",
    "GATEWAY_ORDER_BURST": "3",
    "GATEWAY_RATE_PER_IP": "100r/s",
    "GATEWAY_RATE_PER_IP_BURST": "300",
    # Every suite signs staff in to the admins from 127.0.0.1, more often than a person would; the
    # password-guessing tests flood from 127.0.0.2 past this burst.
    "GATEWAY_ADMIN_LOGIN_BURST": "60",
}


# Every traced process writes its spans to var/<instance>/traces/ (shared.observability.tracing), read by
# test_tracing.
TRACING = {"OTEL_TRACES_EXPORTER": "file"}

# The instance runs its streaming read replica (devtools.replica) as production does; answers say where
# their lag-tolerant reads were made (X-Read-From), and a lag limit short enough to cross in a test
# (tests/test_replica.py).
REPLICA = {"REPLICA_READ_HEADER": "true", "REPLICA_MAX_LAG_SECONDS": "4"}


@dataclass(frozen=True)
class RunningPlatform:
    env: dict
    ports: dict[str, int]
    services: tuple[str, ...]
    broker_url: str
    redis_url: str
    gateway_port: int | None = None

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def gateway_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.gateway_port}{path}"

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess:
        conf = ROOT / "var" / INSTANCE / "supervisord.conf"
        command = [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(conf), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def model(self, expression: str):
        """A value of manage_all.py's own model of this instance (devtools; `platform` names it in
        `expression`), as JSON: what environment a process gets, which secrets it holds, so tests run
        copies as it does."""
        code = (
            "import json; "
            "from devtools import environment, instance, local_monitoring, programs, supervisor; "
            f"platform = instance.load_platform(); print(json.dumps({expression}))"
        )
        answer = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert answer.returncode == 0, answer.stderr
        return json.loads(answer.stdout.strip().splitlines()[-1])

    def processes(self) -> dict[str, tuple[str, int | None]]:
        """supervisord's view of the instance through its XML-RPC interface: program -> (state, pid)."""
        found = self.model("supervisor.Supervisor(platform.instance).processes()")
        return {name: (state, pid) for name, (state, pid) in found.items()}

    def manage_all(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        """manage_all.py on this instance; `env` adds variables (e.g. a setting of a new release)."""
        if args[:1] == ("up",):  # E2E_SCALE first, so that a test's own --scale has the last word
            args = ("up", *SCALE_ARGUMENTS, *args[1:])
        return subprocess.run(
            [sys.executable, str(ROOT / "manage_all.py"), *args],
            cwd=ROOT, env=self.env | env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def _broker_url_for(vhost: str) -> str:
    base = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{vhost}", "", ""))


def _redis_url_for_instance() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", "", ""))


@pytest.fixture(scope="session")
def platform() -> RunningPlatform:
    yield from running_platform()


def running_platform(settings: dict | None = None):
    """Start the instance with the suite's settings (a suite's own conftest may add to them), yield it,
    then stop it (unless E2E_KEEP)."""
    model = topology.load()
    ports = {peer.name: peer.port + PORT_OFFSET for peer in model.peers}
    env = {**os.environ, **SAGA_TIMINGS, **GATEWAY_LIMITS, **TRACING, **REPLICA, **(settings or {})}
    env |= {
        "PLATFORM_INSTANCE": INSTANCE,
        "PLATFORM_PORT_OFFSET": str(PORT_OFFSET),
        "PLATFORM_REDIS_DB": REDIS_DB,
    }
    running = RunningPlatform(
        env=env,
        ports=ports,
        services=model.service_names,
        broker_url=_broker_url_for(INSTANCE),
        redis_url=_redis_url_for_instance(),
        gateway_port=model.gateway.port + PORT_OFFSET if model.gateway else None,
    )
    started = running.manage_all("up", "--no-install")
    assert started.returncode == 0, f"manage_all.py up failed:\n{started.stdout}\n{started.stderr}"
    yield running
    if os.environ.get("E2E_KEEP"):  # a developer iterating on one file: the next run's `up` changes nothing
        return
    stopped = running.manage_all("down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # talk to 127.0.0.1 directly, whatever proxy the environment names
    return session

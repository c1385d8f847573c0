"""The matrix can fail: the same checks, run against a copy of the system with one protection loosened,
must report it. A control copy with nothing changed must pass, so a failure is the mutation's doing.

- The gateway: Flower trusts the gateway to let only staff in. A copy of the gateway's configuration
  without the staff check on /flower/ (listening on a port of its own, in front of the same e2e
  services) must show anonymous visitors and customers getting in.
- A service: a copy of identity's code whose user list lets anyone in (`permission_classes = []`),
  served by its own gunicorn against the e2e instance's database, must show customers and anonymous
  callers reading every user.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import render
from shared.testing import wait_until
from tests.conftest import ROOT
from tests.security import matrix

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running(command: list[str], *, cwd: Path, env: dict, port: int):
    """The process, serving on `port`; its output goes to a file (an undrained pipe would stall it)."""
    log = cwd / f"process-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda: answers(port) or process.poll() is not None, timeout=30, message=f"port {port}"
            )
            assert process.poll() is None, log.read_text()[-3000:]
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=15)


# --- the gateway --------------------------------------------------------------------------------


def gateway_copy(platform, tmp_path: Path, *, loosen_flower: bool) -> tuple[Path, int]:
    """The e2e gateway's configuration rendered again, on a port of its own, without the internal
    balancers (their ports belong to the real gateway); optionally without the staff check on Flower."""
    gateway = render.load_gateway(
        ROOT / "topology.toml", "mutant", tmp_path, int(platform.env["PLATFORM_PORT_OFFSET"]),
        instance_ports={name: (port,) for name, port in platform.ports.items() if name in platform.services},
    )  # fmt: skip
    port = free_port()
    gateway = replace(gateway, listen_port=port, balancer_ports={})
    for sub in ("tmp", "cache", "log"):
        (gateway.nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    (tmp_path / "log").mkdir(exist_ok=True)
    env = {**platform.env, **platform.model("manage_all.flower_env(platform)")}
    conf = render.render_conf(gateway, env)
    flower = conf.index("location /flower/ {")
    if loosen_flower:
        conf = conf[:flower] + conf[flower:].replace("auth_request /_auth/staff;", "", 1)
    gateway.conf_file.write_text(conf)
    return gateway.conf_file, port


@pytest.fixture
def gateway_dir(platform):
    """Under the instance's own folder: nginx's workers run unprivileged and cannot enter pytest's
    private temporary folders, as they enter var/<instance>/nginx."""
    folder = ROOT / "var" / platform.env["PLATFORM_INSTANCE"] / f"mutant-gateway-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("loosen", [False, True], ids=["control", "flower-without-staff-check"])
def test_a_gateway_that_lets_anyone_into_flower_fails_the_matrix(
    platform, policy, world, gateway_dir, loosen
):
    conf, port = gateway_copy(platform, gateway_dir, loosen_flower=loosen)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [nginx, "-c", str(conf), "-p", str(conf.parent), "-g", "daemon off;"]
    with running(command, cwd=gateway_dir, env=platform.env, port=port) as gateway:
        every = matrix.location_cells(policy, list(platform.services), world.callers, gateway)
        failures = matrix.failures([cell for cell in every if cell.path == "/flower/"])

    if not loosen:
        assert failures == []
        return
    assert any("/flower/ as anonymous: " in failure for failure in failures), failures
    assert any("/flower/ as customer: " in failure for failure in failures), failures


# --- a service ----------------------------------------------------------------------------------

LOOSENED_USER_LIST = (
    "class UserListApi(ListAPIView):\n    permission_classes = [IsStaff]",
    "class UserListApi(ListAPIView):\n    permission_classes = []",
)


def identity_copy(tmp_path: Path, *, loosen: bool) -> Path:
    copy = tmp_path / "identity"
    shutil.copytree(
        ROOT / "services" / "identity", copy, ignore=shutil.ignore_patterns("__pycache__", "tests")
    )
    views = copy / "identity" / "api" / "views.py"
    source = views.read_text()
    assert LOOSENED_USER_LIST[0] in source, "the user list's protection moved: update the mutation"
    if loosen:
        views.write_text(source.replace(*LOOSENED_USER_LIST))
    return copy


@pytest.mark.parametrize("loosen", [False, True], ids=["control", "user-list-open-to-anyone"])
def test_a_service_that_lets_anyone_list_users_fails_the_matrix(
    platform, policy, routes, world, tmp_path, loosen
):
    copy = identity_copy(tmp_path, loosen=loosen)
    port = free_port()
    env = {
        **platform.env,
        **platform.model(f"manage_all.service_env(platform, 'identity', {port})"),
    }
    command = [
        str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--threads", "8", "--worker-class", "gthread", "--no-control-socket",
    ]  # fmt: skip
    with running(command, cwd=copy, env=env, port=port) as identity:
        target = {"identity": [matrix.Target("identity copy", identity, through_gateway=False)]}
        own = [
            route
            for route in routes
            if route.service == "identity" and not route.pattern.startswith("admin/")
        ]
        failures = matrix.failures(matrix.route_cells(policy, own, world.callers, target, world.objects))

    if not loosen:
        assert failures == []
        return
    assert any("GET /api/v1/users/ as anonymous: " in failure for failure in failures), failures
    assert any("GET /api/v1/users/ as customer: " in failure for failure in failures), failures

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
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.security import matrix
from tests.security.copies import VENV_BIN, free_port, gateway_copy, nginx_command, running


@pytest.mark.parametrize("loosen", [False, True], ids=["control", "flower-without-staff-check"])
def test_a_gateway_that_lets_anyone_into_flower_fails_the_matrix(
    platform, policy, world, gateway_dir, loosen
):
    conf, port = gateway_copy(platform, gateway_dir, loosen_flower=loosen)
    with running(nginx_command(conf), cwd=gateway_dir, env=platform.env, port=port) as gateway:
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
        **platform.model(f"environment.service_env(platform, 'identity', {port})"),
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

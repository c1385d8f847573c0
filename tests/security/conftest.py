"""The security suite's shared fixtures: the access policy, the routes it lists, and the callers made for
real on the e2e instance (made once per run: they register users, demote and deactivate some)."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from tests.conftest import ROOT
from tests.security import callers, matrix


@pytest.fixture(scope="session")
def policy() -> dict:
    return matrix.load_policy()


@pytest.fixture(scope="session")
def routes(platform, policy) -> list[matrix.Route]:
    return matrix.policy_routes(policy, list(platform.services))


@pytest.fixture(scope="session")
def service_patterns(platform) -> dict[str, list[str]]:
    """What each service's URL conf answers, from `manage.py routes` (JSON)."""
    patterns = {}
    for service in platform.services:
        answer = platform.manage_all("manage", service, "routes", timeout=120)
        assert answer.returncode == 0, answer.stderr
        patterns[service] = json.loads(answer.stdout.strip().splitlines()[-1])
    return patterns


@pytest.fixture(scope="session")
def world(platform) -> callers.World:
    return callers.build(platform)


@pytest.fixture
def gateway_dir(platform):
    """Under the instance's own folder: nginx's workers run unprivileged and cannot enter pytest's
    private temporary folders, as they enter var/<instance>/nginx."""
    folder = ROOT / "var" / platform.env["PLATFORM_INSTANCE"] / f"mutant-gateway-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)

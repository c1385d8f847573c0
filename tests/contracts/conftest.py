"""The contracts suite's instance (`contracts`, ports + 3000, devtools.suites.OWN_INSTANCES): the fuzzer
writes thousands of rows there and nowhere else, through gateway limits raised far above what it sends,
with access tokens that outlive a run."""

from __future__ import annotations

import pytest

from tests.conftest import running_platform

RAISED_GATEWAY_LIMITS = {
    f"GATEWAY_{name}_RATE": "1000r/s" for name in ("ORDER", "LOGIN", "ADMIN_LOGIN", "REFRESH")
} | {f"GATEWAY_{name}_BURST": "1000" for name in ("ORDER", "LOGIN", "ADMIN_LOGIN", "REFRESH")}
CONTRACT_SETTINGS = {
    **RAISED_GATEWAY_LIMITS,
    "GATEWAY_RATE_PER_IP": "1000r/s",
    "GATEWAY_RATE_PER_IP_BURST": "1000",
    "JWT_ACCESS_MINUTES": "60",
}


@pytest.fixture(scope="session")
def platform():
    yield from running_platform(CONTRACT_SETTINGS)

"""Every service's OpenAPI document is the contract it keeps: schemathesis fuzzes every operation, on the
service's own port and through the gateway, as a customer and as staff, and finds nothing.

Each run has callers of its own (a new customer; a new customer made staff), so that what one run's
fuzzing changes (a user deactivated through PATCH /api/v1/users/{id}/) cannot blunt another run.
"""

from __future__ import annotations

import pytest

from tests.contracts import fuzzing
from tests.contracts.callers import Callers

SERVICES = ("identity", "catalog", "inventory", "orders", "payments", "notifications")
RUN_SEED = fuzzing.seed()


def _target(platform, service: str, route: str) -> fuzzing.Target:
    if route == "gateway":
        return fuzzing.Target(
            schema_url=platform.gateway_url(f"/api/schema/{service}/"),
            base_url=platform.gateway_url(""),
            skip_internal=True,
        )
    return fuzzing.Target(
        schema_url=platform.url(service, "/api/schema/"),
        base_url=platform.url(service, ""),
        skip_internal=False,
    )


@pytest.mark.parametrize("route", ["service", "gateway"])
@pytest.mark.parametrize("caller", ["customer", "staff"])
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_keeps_the_openapi_contract(platform, service, caller, route, tmp_path):
    callers = Callers(platform)
    token = callers.customer() if caller == "customer" else callers.staff()

    run = fuzzing.fuzz(_target(platform, service, route), token, tmp_path / "report.json", run_seed=RUN_SEED)

    assert run.cases >= 50, f"schemathesis generated only {run.cases} cases:\n{run.console}"
    assert not run.failures and not run.errors, f"seed {RUN_SEED}:\n{run.console}"
    # The caller's token worked: staff were refused nothing but the service-token routes; a customer (also
    # refused the staff routes) was let in somewhere.
    if caller == "staff":
        assert all(" /internal/" in operation for operation in run.refused_everything), run.console
    else:
        assert len(run.refused_everything) < run.report["operations"]["tested"], run.console
    assert callers.still_signed_in(token), "the fuzzing took the caller's own access away"

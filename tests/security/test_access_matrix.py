"""Every route of the system, as every kind of caller, through the gateway and on each service's own
port, against the access policy written down in access_policy.toml; and no route without a policy line.

The matrix is about who gets in, so probes carry empty bodies: a caller who is let in gets a 400 or the
object, one who is not gets the policy's refusal in the error shape. Customer A owns every object the
probes name; customer B must not learn they exist.
"""

from __future__ import annotations

from tests.conftest import ROOT
from tests.security import matrix


def targets_of(platform) -> dict[str, list[matrix.Target]]:
    gateway = matrix.Target("gateway", platform.gateway_url(""), through_gateway=True)
    return {
        service: [matrix.Target(f"{service} port", platform.url(service, ""), through_gateway=False), gateway]
        for service in platform.services
    }


def test_every_route_of_every_service_has_a_line_in_the_policy(platform, routes, service_patterns):
    unlisted = {
        service: matrix.unlisted_patterns(routes, service, patterns)
        for service, patterns in service_patterns.items()
    }
    assert not any(unlisted.values()), f"routes without an access policy line: {unlisted}"


def test_every_policy_line_names_a_route_that_exists(routes, service_patterns):
    stale = [
        f"{route.service} {route.pattern}"
        for route in routes
        if not any(route.matches(pattern) for pattern in service_patterns[route.service])
    ]
    assert not stale, f"policy lines for routes that do not exist: {stale}"


def test_every_location_of_the_gateway_has_a_line_in_the_policy(platform, policy, routes):
    conf = (ROOT / "var" / platform.env["PLATFORM_INSTANCE"] / "nginx" / "nginx.conf").read_text()
    locations = matrix.nginx_locations(conf)
    assert len(locations) > 20, locations  # the rendered file was read, not an empty one

    assert matrix.unlisted_locations(policy, routes, list(platform.services), locations) == []


def test_every_route_answers_every_caller_as_the_policy_says(platform, policy, routes, world):
    cells = matrix.route_cells(policy, routes, world.callers, targets_of(platform), world.objects)
    assert len(cells) > 2000, len(cells)  # every route, method, caller and target: nothing skipped

    failures = matrix.failures(cells)

    assert not failures, f"{len(failures)} cells of the access matrix do not hold:\n" + "\n".join(failures)


def test_the_gateways_own_locations_answer_every_caller_as_the_policy_says(platform, policy, world):
    cells = matrix.location_cells(policy, list(platform.services), world.callers, platform.gateway_url(""))

    failures = matrix.failures(cells)

    assert not failures, "\n".join(failures)

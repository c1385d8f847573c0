"""The access matrix: the policy (access_policy.toml), the routes the system really has, the probes, and
the judge. Plain functions, so that the mutation tests can run the very same checks against a copy of
the system with one protection loosened and see them fail.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

POLICY_FILE = Path(__file__).with_name("access_policy.toml")
REFUSALS = {401, 403}
# A path parameter in Django's route syntax: <uuid:order_id>, <pk>.
PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def load_policy(path: Path = POLICY_FILE) -> dict:
    return tomllib.loads(path.read_text())


@dataclass(frozen=True)
class Route:
    """One policy line, for one service."""

    service: str
    pattern: str  # Django's route, `{service}` filled in
    access: dict[str, str]  # method -> access level
    gateway: str  # "routed" or "hidden"
    params: dict[str, str]

    def matches(self, pattern: str) -> bool:
        if self.pattern.endswith("**"):
            return pattern.startswith(self.pattern[:-2])
        return pattern == self.pattern

    def path(self, objects: dict[str, str]) -> str:
        """The route with its parameters filled by the objects the test made (admin: its index)."""
        route = self.pattern.removesuffix("**")

        def fill(match: re.Match) -> str:
            return objects[self.params[match["name"]]]

        return "/" + PARAMETER.sub(fill, route)


def policy_routes(policy: dict, services: list[str]) -> list[Route]:
    """Every route line, with the `service = "*"` lines repeated for each service."""
    routes = []
    for line in policy["route"]:
        every = [service for service in services if service not in line.get("except", [])]
        for service in every if line["service"] == "*" else [line["service"]]:
            routes.append(
                Route(
                    service=service,
                    pattern=line["pattern"].replace("{service}", service),
                    access=dict(line["access"]),
                    gateway=line["gateway"],
                    params=dict(line.get("params", {})),
                )
            )
    return routes


def unlisted_patterns(routes: list[Route], service: str, patterns: list[str]) -> list[str]:
    """The URL patterns of `service` that no policy line covers."""
    own = [route for route in routes if route.service == service]
    return [pattern for pattern in patterns if not any(route.matches(pattern) for route in own)]


def unlisted_locations(
    policy: dict, routes: list[Route], services: list[str], locations: list[str]
) -> list[str]:
    """The gateway's locations (from its rendered nginx.conf) that neither a routed service route nor a
    [[gateway_location]] line covers. Internal and named locations are the gateway's own plumbing."""
    known = set()
    for line in policy["gateway_location"]:
        known |= {line["location"].replace("{service}", service) for service in services}
    routed = [route for route in routes if route.gateway == "routed"]
    missing = []
    for location in locations:
        if location.startswith(("@", "= /_auth/", "= /_errors/")) or location == "/":
            continue  # named and internal locations (auth_request targets, error pages), the catch-all 404
        path = location.removeprefix("= ").lstrip("/")
        covered = location in known or any(
            route.matches(path)
            or fnmatch.fnmatch(path, route.pattern.removesuffix("**") + "*")
            or route.pattern.startswith(path)  # a prefix location in front of the routes below it
            for route in routed
        )
        if not covered:
            missing.append(location)
    return missing


def nginx_locations(conf: str) -> list[str]:
    """The `location` lines of a rendered nginx.conf (match modifier kept: "= /health", "/docs/")."""
    return [match.group(1).strip() for match in re.finditer(r"^\s*location\s+([^{]+?)\s*\{", conf, re.M)]


# --- probing and judging -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is calling: the headers and cookies they bring."""

    name: str
    headers: dict
    cookies: dict


# The whole matrix comes from one address, faster than any client would: the gateway's per-address
# limit may answer 429 first. That says nothing about authorization, so the probe does what a client
# does, waits as told by Retry-After and asks again (nginx refused it before any service saw it).
RATE_LIMITED_RETRIES = 5


def probe(session: requests.Session, base: str, method: str, path: str, caller: Caller) -> requests.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    # A connection of its own per probe: a kept-alive one the server closes meanwhile would fail a POST
    # that never arrived, and a probe is never sent twice unless the edge refused it unseen (429).
    headers = {**caller.headers, "Connection": "close"}
    for _attempt in range(RATE_LIMITED_RETRIES):
        answer = session.request(
            method, base + path, json=body, headers=headers, cookies=caller.cookies,
            allow_redirects=False, timeout=15,
        )  # fmt: skip
        if answer.status_code != 429:
            return answer
        time.sleep(float(answer.headers.get("Retry-After") or 1))
    return answer


def expected_outcome(policy: dict, access: str, caller: str) -> str:
    outcomes = policy["outcomes"][access]
    return outcomes.get(caller, outcomes["default"])


def judge(expected: str, answer: requests.Response, *, api_path: bool) -> str | None:
    """Why `answer` is not `expected`, or None when it is."""
    status = answer.status_code
    if status >= 500:
        return f"server error {status}"
    if expected == "ok":
        if status in REFUSALS:
            return f"refused with {status}, expected to be let in"
        if status == 302 and "/login/" in answer.headers.get("Location", ""):
            return "sent to log in, expected to be let in"
        return None
    if expected == "login":
        location = answer.headers.get("Location", "")
        return (
            None
            if status == 302 and "/login/" in location
            else f"{status} {location!r}, expected a login redirect"
        )
    if status != int(expected):
        return f"{status}, expected {expected}"
    if api_path:
        return error_shape_problem(answer)
    return None


def error_shape_problem(answer: requests.Response) -> str | None:
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{answer.status_code} not in the error shape: {answer.text[:120]!r}"
    if not {"code", "message", "fields"} <= set(error):
        return f"{answer.status_code} error without code/message/fields: {error}"
    return None


@dataclass(frozen=True)
class Target:
    """Where a route is probed: a service's own port, or the gateway."""

    name: str  # "gateway" or "<service> port"
    base: str
    through_gateway: bool


@dataclass(frozen=True)
class Cell:
    """One probe and what the policy expects of it."""

    where: str
    base: str
    method: str
    path: str
    caller: Caller
    expected: str
    api_path: bool

    def failure(self, session: requests.Session) -> str | None:
        answer = probe(session, self.base, self.method, self.path, self.caller)
        problem = judge(self.expected, answer, api_path=self.api_path)
        return f"{self.where} {self.method} {self.path} as {self.caller.name}: {problem}" if problem else None


def route_cells(
    policy: dict, routes: list[Route], callers: list[Caller], targets: dict[str, list[Target]], objects: dict
) -> list[Cell]:
    cells = []
    for route in routes:
        path = route.path(objects)
        for target in targets[route.service]:
            for method, access in route.access.items():
                for caller in callers:
                    if target.through_gateway and route.gateway == "hidden":
                        expected = "404"
                    else:
                        expected = expected_outcome(policy, access, caller.name)
                    api_path = not path.startswith("/admin/")
                    cells.append(Cell(target.name, target.base, method, path, caller, expected, api_path))
    return cells


def location_cells(policy: dict, services: list[str], callers: list[Caller], gateway: str) -> list[Cell]:
    """The gateway's own locations ([[gateway_location]]), probed at their plain path."""
    cells = []
    for line in policy["gateway_location"]:
        for location in sorted({line["location"].replace("{service}", service) for service in services}):
            path = location.removeprefix("= ")
            for method, access in line["access"].items():
                for caller in callers:
                    expected = expected_outcome(policy, access, caller.name)
                    cells.append(Cell("gateway", gateway, method, path, caller, expected, api_path=True))
    return cells


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connections from one local address (a loopback alias such as 127.0.1.3)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


def failures(cells: list[Cell], workers: int = 8) -> list[str]:
    """Every cell that does not hold, as readable lines (empty when all hold). Probes run side by side:
    none of them depends on another's effect (a deleted product answers 404, which is still "ok").

    Each worker sends from a loopback address of its own (127.0.1.<n>): the matrix is thousands of
    probes, and from one address the gateway's per-address limit would shape its pace (tests/addresses.py).
    """
    local = threading.local()
    sources = iter(f"127.0.1.{n}" for n in range(1, workers + 1))
    sources_lock = threading.Lock()

    def check(cell: Cell) -> str | None:
        if not hasattr(local, "session"):
            with sources_lock:
                source = next(sources)
            local.session = requests.Session()
            local.session.trust_env = False
            local.session.mount("http://", SourceAddressAdapter(source))
        return cell.failure(local.session)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [problem for problem in pool.map(check, cells) if problem]

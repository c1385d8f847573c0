"""Is the instance up? Each web instance's, sandbox's and the gateway's readiness, as `up` waits for it
and `status` reports it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from devtools.console import PlatformError, display, step
from devtools.instance import Platform
from devtools.programs import web_instances

TCP_TIMEOUT = 2.0
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class HealthTarget:
    """One thing `up` waits for and `status` reports: a web instance, a sandbox or the gateway."""

    label: str
    port: int
    path: str
    program: str  # whose log explains a failure


def readiness(port: int, path: str = "/health/ready") -> tuple[str, str]:
    """(status, answer) from a service's /health/ready; status is "unreachable" when nothing answers."""
    url = f"http://127.0.0.1:{port}{path}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP proxy
    try:
        with opener.open(url, timeout=TCP_TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as error:  # 503 while not ready still carries the JSON answer
        body = error.read()
    except (urllib.error.URLError, OSError) as error:
        return "unreachable", f"{url}: {getattr(error, 'reason', error)}"
    text = body.decode(errors="replace").strip()
    try:
        return str(json.loads(text).get("status", "unknown")), text
    except (ValueError, AttributeError):
        return "invalid", text[:300]


def health_targets(platform: Platform) -> list[HealthTarget]:
    """Every web instance of every service, every sandbox, and the gateway's aggregate."""
    targets = []
    for service in platform.topology.services:
        for number, (program, port) in enumerate(web_instances(platform, service), start=1):
            label = service.name if number == 1 else f"{service.name} instance {number}"
            targets.append(HealthTarget(label, port, "/health/ready", program))
    for sandbox in platform.topology.sandboxes:  # a stand-in has no dependencies: liveness is enough
        targets.append(
            HealthTarget(
                sandbox.name, platform.instance.port(sandbox.port), "/health/live", sandbox.host_name
            )
        )
    if platform.topology.gateway is not None:  # the aggregate, through nginx and the verifier
        targets.append(
            HealthTarget(
                "gateway", platform.instance.port(platform.topology.gateway.port), "/health", "gateway-nginx"
            )
        )
    return targets


def wait_until_healthy(platform: Platform, timeout: float = READY_TIMEOUT) -> None:
    """Poll every instance's readiness until all say "healthy"; explain which did not in time."""
    targets = health_targets(platform)
    step(f"Waiting up to {timeout:.0f} s for {', '.join(t.label for t in targets)} to be healthy")
    deadline = time.monotonic() + timeout
    while True:
        pending = [(t, answer) for t in targets if (answer := readiness(t.port, t.path))[0] != "healthy"]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise PlatformError(not_healthy_report(platform, pending, timeout))
        time.sleep(1)


def not_healthy_report(platform: Platform, pending: list, timeout: float) -> str:
    lines = [f"not healthy after {timeout:.0f} s:"]
    for target, (status, answer) in pending:
        log_file = platform.instance.log_dir / f"{target.program}.log"
        lines.append(f"  {target.label}: {status}; last answer: {answer}; log: {display(log_file)}")
    return "\n".join(lines)

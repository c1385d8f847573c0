"""The monitoring of a local instance: Prometheus, Alertmanager and the alert receiver, configured by
monitoring/render.py for the instance's ports and run beside the platform."""

from __future__ import annotations

import urllib.error
import urllib.request

from devtools.console import PlatformError, display, step, wait_for
from devtools.instance import Platform, host_and_port
from devtools.packages import apt_install, can_install
from devtools.paths import ROOT, VENV_BIN
from devtools.supervisor import Program
from monitoring import render

TCP_TIMEOUT = 2.0
READY_TIMEOUT = 60.0


def monitoring_of(platform: Platform) -> render.Monitoring | None:
    """The instance's monitoring, or None when topology.toml has no [monitoring] table."""
    instance, topology = platform.instance, platform.topology
    rabbitmq_host, _ = host_and_port(instance.broker_url, 5672)
    web_ports = {
        s.name: tuple(instance.port(port) for port in topology.web_ports(s)) for s in topology.services
    }
    return render.monitoring_of(
        topology, instance.name, instance.var_dir, instance.port_offset,
        rabbitmq_host=rabbitmq_host, vhost=instance.broker_vhost, web_ports=web_ports,
    )  # fmt: skip


def binaries(*, required: bool = True) -> dict[str, str]:
    try:
        return render.binaries(required=required)
    except render.MonitoringError as problem:
        raise PlatformError(str(problem)) from None


def ensure_binaries() -> dict[str, str]:
    """Prometheus, Alertmanager and promtool; on a fresh machine installed like nginx, from Debian."""
    try:
        return binaries()
    except PlatformError:
        if not can_install():
            raise  # the one line naming what to install
        apt_install(list(render.DEBIAN_PACKAGES), "monitoring")
        return binaries()


def render_monitoring(platform: Platform) -> None:
    """Render prometheus.yml and alertmanager.yml for the instance; promtool checks them before any start."""
    monitoring = monitoring_of(platform)
    if monitoring is None:
        return
    found = ensure_binaries()
    for path in render.write(monitoring):
        step(f"Rendered {display(path)}")
    try:
        render.check(monitoring, found)
    except render.MonitoringError as problem:
        raise PlatformError(str(problem)) from None


def monitoring_programs(platform: Platform) -> list[Program]:
    """Prometheus, Alertmanager and the alert receiver (monitoring/render.py describes them)."""
    monitoring = monitoring_of(platform)
    if monitoring is None:
        return []
    # `up` has checked the binaries (render_monitoring); `logs` and `status` only need the names.
    processes = render.processes(monitoring, binaries(required=False), str(VENV_BIN / "gunicorn"))
    return [Program(process.name, process.command, ROOT, process.environment) for process in processes]


def answers(platform: Platform) -> dict[str, str]:
    """Each monitoring process' answer: "ok" or why not."""
    monitoring = monitoring_of(platform)
    if monitoring is None:
        return {}
    return {name: answer_of(url) for name, url in monitoring.health_urls().items()}


def answer_of(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TCP_TIMEOUT):
            return "ok"
    except (urllib.error.URLError, OSError) as error:
        return f"{url}: {getattr(error, 'reason', error)}"


def wait_until_ready(platform: Platform, timeout: float = READY_TIMEOUT) -> None:
    if not wait_for(lambda: all(a == "ok" for a in answers(platform).values()), timeout, 1.0):
        pending = {name: answer for name, answer in answers(platform).items() if answer != "ok"}
        lines = [f"  {name}: {answer}; log: {display(platform.instance.log_dir / f'{name}.log')}"
                 for name, answer in pending.items()]  # fmt: skip
        raise PlatformError("\n".join([f"monitoring not ready after {timeout:.0f} s:", *lines]))


def prometheus_pages(prometheus_url: str) -> dict[str, str]:
    """Where this Prometheus shows its targets and alerts: the React UI's `/targets`, or `/classic/targets`
    in Debian's package, which is built without the React UI (its `/targets` answers 404)."""
    react = answer_of(f"{prometheus_url}/targets") == "ok"
    prefix = prometheus_url if react else f"{prometheus_url}/classic"
    return {"targets": f"{prefix}/targets", "alerts": f"{prefix}/alerts"}

"""Copies of parts of the running e2e instance, started beside it for the security suite: a gateway
rendered again on a port of its own (optionally changed), a service's code copied and served by its own
gunicorn. They reach the same services, databases and Redis as the real ones."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from devtools import topology
from gateway import render
from shared.testing import wait_until

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
def running(command: list[str], *, cwd: Path, env: dict, port: int, log_dir: Path | None = None):
    """The process, serving on `port`; its output goes to a file in `log_dir` (default `cwd`): an
    undrained pipe would stall it."""
    log = (log_dir or cwd) / f"process-{port}.log"
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


def gateway_copy(
    platform, tmp_path: Path, *, loosen_flower: bool = False, verifier_port: int | None = None
) -> tuple[Path, int]:
    """The e2e gateway's configuration rendered again, on a port of its own, without the internal
    balancers (their ports belong to the real gateway); optionally without the staff check on Flower, or
    asking another verifier."""
    gateway = render.gateway_of(
        topology.load(), "mutant", tmp_path, int(platform.env["PLATFORM_PORT_OFFSET"]),
        instance_ports={name: (port,) for name, port in platform.ports.items() if name in platform.services},
    )  # fmt: skip
    port = free_port()
    gateway = replace(gateway, listen_port=port, balancer_ports={})
    if verifier_port is not None:
        gateway = replace(gateway, verifier_port=verifier_port)
    for sub in ("tmp", "cache", "log"):
        (gateway.nginx_dir / sub).mkdir(parents=True, exist_ok=True)
    (tmp_path / "log").mkdir(exist_ok=True)
    env = {**platform.env, **platform.model("environment.flower_env(platform)")}
    conf = render.render_conf(gateway, env)
    flower = conf.index("location /flower/ {")
    if loosen_flower:
        conf = conf[:flower] + conf[flower:].replace("auth_request /_auth/staff;", "", 1)
    gateway.conf_file.write_text(conf)
    return gateway.conf_file, port


def nginx_command(conf: Path) -> list[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return [nginx, "-c", str(conf), "-p", str(conf.parent), "-g", "daemon off;"]

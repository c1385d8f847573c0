"""The gateway of a local instance: nginx with the configuration gateway/render.py renders for the
instance's ports, and the token verifier it asks."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from devtools.console import PlatformError, display, step
from devtools.environment import flower_env, peer_urls
from devtools.instance import Platform
from devtools.packages import ensure_nginx, nginx_binary
from devtools.paths import KEYS_DIR, ROOT, VENV_BIN
from devtools.supervisor import Program
from gateway import render


def gateway_of(platform: Platform) -> render.Gateway | None:
    """The instance's gateway (every web instance and internal balancer at its shifted port), or None
    when topology.toml has no [gateway] table."""
    instance, topology = platform.instance, platform.topology
    if topology.gateway is None:
        return None
    instance_ports = {
        service.name: tuple(instance.port(port) for port in topology.web_ports(service))
        for service in topology.services
    }
    balancer_ports = {
        service.name: instance.port(port)
        for service in topology.services
        if (port := topology.balancer_port(service)) is not None
    }
    return render.gateway_of(
        topology, instance.name, instance.var_dir, instance.port_offset,
        instance_ports=instance_ports, balancer_ports=balancer_ports,
    )  # fmt: skip


def nginx_command(binary: str, conf: Path) -> list[str]:
    # -e: the error log nginx opens before reading the configuration, which the default would put in /var/log.
    return [
        binary,
        "-g",
        "daemon off;",
        "-c",
        str(conf),
        "-p",
        str(conf.parent),
        "-e",
        str(conf.parent / "error.log"),
    ]


def render_gateway(platform: Platform) -> None:
    """Render nginx.conf for the instance and have nginx check it, so a bad configuration fails `up`."""
    gateway = gateway_of(platform)
    if gateway is None:
        return
    binary = ensure_nginx()
    try:
        conf = render.write(gateway, {**os.environ, **flower_env(platform)})
    except FileNotFoundError as exc:  # Swagger UI's files come from a pinned requirement
        raise PlatformError(str(exc)) from exc
    step(f"Rendered {display(conf)}")
    check = [binary, "-t", "-c", str(conf), "-p", str(conf.parent), "-e", str(conf.parent / "error.log")]
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PlatformError(f"nginx refuses {display(conf)}:\n{result.stderr.strip()}")


def gateway_programs(platform: Platform) -> list[Program]:
    """nginx on the gateway port and the verifier it asks (auth_request, /health)."""
    gateway = gateway_of(platform)
    if gateway is None:
        return []
    verifier = render.verifier_command(f"127.0.0.1:{gateway.verifier_port}", str(VENV_BIN / "gunicorn"))
    verifier_env = {
        "JWT_PUBLIC_KEY_FILE": str(KEYS_DIR / "jwt-public.pem"),
        "REDIS_URL": platform.instance.redis_url,
        "GATEWAY_SERVICES": ",".join(platform.topology.service_names),
        "PYTHONUNBUFFERED": "1",
        **peer_urls(platform),
    }
    conf = gateway.conf_file
    # supervisord restarts a program only when its section changes: the configuration's digest is part
    # of it, so a re-rendered nginx.conf takes effect on the next `up`.
    digest = hashlib.sha256(conf.read_bytes()).hexdigest()[:16] if conf.exists() else "none"
    nginx = nginx_command(nginx_binary() or "nginx", conf)
    return [
        Program("gateway-verifier", verifier, ROOT, verifier_env),
        Program("gateway-nginx", nginx, ROOT, {"GATEWAY_CONF_DIGEST": digest}),
    ]

"""Platform instances: isolated copies of the system on one machine, and where the infrastructure is.

PLATFORM_INSTANCE (default "dev") names the copy. "dev" uses topology.toml's ports as they are; any other
name is shifted away by PLATFORM_PORT_OFFSET (default 1000) and gets its own databases (`<service>_<name>`),
RabbitMQ vhost, Redis database (PLATFORM_REDIS_DB, default 1) and var/<name>/ folder, so the test suites
run beside a developer's platform. Standard library only (the bootstrap uses it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from devtools import topology as topology_model
from devtools.console import PlatformError
from devtools.paths import ROOT
from devtools.topology import Service, Topology, TopologyError

DEFAULT_INSTANCE = "dev"
INSTANCE_NAME = re.compile(r"[a-z][a-z0-9_]*")  # ends up in database names and a vhost: keep it plain
OTHER_INSTANCE_PORT_OFFSET = topology_model.INSTANCE_PORT_SPACING
OTHER_INSTANCE_REDIS_DB = 1
INSTANCES_FILE = "instances.json"  # the web instance counts the last `up` applied, for the other commands
REPLICA_FILE = "replica.json"  # the read replica the last `up` started, or why it did not (devtools.replica)
SCALE_ARGUMENT = re.compile(r"(?P<service>[a-z][a-z0-9_]*)=(?P<count>\d+)")


@dataclass(frozen=True)
class Endpoints:
    """Where Postgres, RabbitMQ and Redis run: the environment's word, else topology.toml's defaults."""

    postgres_host: str
    postgres_port: int
    pg_admin_url: str
    broker_url: str
    redis_url: str


@dataclass(frozen=True)
class Instance:
    """An isolated copy of the system: its ports, database names, vhost, Redis database and var dir."""

    name: str
    port_offset: int
    db_suffix: str
    broker_url: str
    broker_vhost: str
    redis_url: str
    var_dir: Path

    def port(self, base_port: int) -> int:
        return base_port + self.port_offset

    def database(self, role: str) -> str:
        return f"{role}{self.db_suffix}"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def metrics_dir(self) -> Path:
        return self.var_dir / "metrics"

    @property
    def supervisor_conf(self) -> Path:
        return self.var_dir / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.var_dir / "supervisor.sock"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.var_dir / "supervisord.pid"


@dataclass(frozen=True)
class Replica:
    """The instance's streaming read replica, as the last `up` started it (devtools.replica)."""

    port: int  # shifted like every port of the instance
    postgres: str  # the server binary, of the primary's major version
    user: str | None  # the system user it runs as (Postgres refuses root); None: manage_all.py's own


@dataclass(frozen=True)
class Platform:
    """Everything a command needs to know: the topology, the infrastructure and the instance."""

    topology: Topology
    endpoints: Endpoints
    instance: Instance
    replica: Replica | None = None  # None: the `replica` alias of every service is the primary

    def service(self, name: str) -> Service:
        try:
            return self.topology.service(name)
        except TopologyError as unknown:
            raise PlatformError(str(unknown)) from None


def load_topology() -> Topology:
    try:
        return topology_model.load()
    except TopologyError as problem:
        raise PlatformError(str(problem)) from None


def load_platform(scale: dict[str, int] | None = None, env: dict | None = None) -> Platform:
    """Topology + environment -> Platform, for the instance named by PLATFORM_INSTANCE.

    `scale` replaces web instance counts (what `up --scale` asks for); without it, the counts the last
    `up` applied are used, so that status, logs and health cover the instances actually running.
    """
    env = os.environ if env is None else env
    topology = load_topology()
    endpoints = load_endpoints(topology, env)
    instance = resolve_instance(env.get("PLATFORM_INSTANCE", DEFAULT_INSTANCE), endpoints, env)
    if scale is None:
        scale = {name: n for name, n in applied_instances(instance).items() if name in topology.service_names}
    try:
        return Platform(topology.scaled(scale), endpoints, instance, recorded_replica(instance))
    except TopologyError as problem:
        raise PlatformError(str(problem)) from None


def load_endpoints(topology: Topology, env: dict) -> Endpoints:
    """The infrastructure from POSTGRES_HOST/PORT, PG_ADMIN_URL, BROKER_URL, REDIS_URL, else topology's."""
    infrastructure = topology.infrastructure
    pg_host = env.get("POSTGRES_HOST", infrastructure.postgres.host)
    pg_port = int(env.get("POSTGRES_PORT", infrastructure.postgres.port))
    broker = f"{url_host(infrastructure.rabbitmq.host)}:{infrastructure.rabbitmq.port}"
    redis = f"{url_host(infrastructure.redis.host)}:{infrastructure.redis.port}"
    return Endpoints(
        postgres_host=pg_host,
        postgres_port=pg_port,
        pg_admin_url=env.get("PG_ADMIN_URL", f"postgresql://root@{url_host(pg_host)}:{pg_port}/postgres"),
        broker_url=env.get("BROKER_URL", f"amqp://guest:guest@{broker}//"),
        redis_url=env.get("REDIS_URL", f"redis://{redis}/0"),
    )


def resolve_instance(name: str, endpoints: Endpoints, env: dict) -> Instance:
    """Describe instance `name`: "dev" uses topology's ports as they are, any other name is shifted away."""
    if not INSTANCE_NAME.fullmatch(name):
        raise PlatformError(f"PLATFORM_INSTANCE={name!r}: use lower-case letters, digits and underscores")
    if name == DEFAULT_INSTANCE:
        return Instance(
            name=name,
            port_offset=0,
            db_suffix="",
            broker_url=endpoints.broker_url,
            broker_vhost=broker_vhost(endpoints.broker_url),
            redis_url=endpoints.redis_url,
            var_dir=ROOT / "var" / name,
        )
    redis_db = env.get("PLATFORM_REDIS_DB", str(OTHER_INSTANCE_REDIS_DB))
    return Instance(
        name=name,
        port_offset=int(env.get("PLATFORM_PORT_OFFSET", OTHER_INSTANCE_PORT_OFFSET)),
        db_suffix=f"_{name}",
        broker_url=replace_url_path(endpoints.broker_url, "/" + quote(name, safe="")),
        broker_vhost=name,
        redis_url=replace_url_path(endpoints.redis_url, "/" + redis_db),
        var_dir=ROOT / "var" / name,
    )


def parse_scale(arguments: list[str]) -> dict[str, int]:
    """`--scale catalog=2 --scale orders=3` -> {"catalog": 2, "orders": 3}; a service's last word wins."""
    counts = {}
    for argument in arguments:
        match = SCALE_ARGUMENT.fullmatch(argument.strip())
        if match is None or not 1 <= int(match["count"]) <= topology_model.MAX_WEB_INSTANCES:
            raise PlatformError(
                f"--scale {argument!r}: write SERVICE=N with N from 1 to {topology_model.MAX_WEB_INSTANCES}, "
                "e.g. catalog=2"
            )
        counts[match["service"]] = int(match["count"])
    return counts


def applied_instances(instance: Instance) -> dict[str, int]:
    """The web instance counts the instance's last `up` applied ({} when unknown)."""
    try:
        counts = json.loads((instance.var_dir / INSTANCES_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    valid = isinstance(counts, dict) and all(isinstance(c, int) and c >= 1 for c in counts.values())
    return counts if valid else {}


def record_instances(platform: Platform) -> None:
    counts = {service.name: service.instances for service in platform.topology.services}
    platform.instance.var_dir.mkdir(parents=True, exist_ok=True)
    (platform.instance.var_dir / INSTANCES_FILE).write_text(json.dumps(counts, indent=2) + "\n")


def forget_instances(instance: Instance) -> None:
    (instance.var_dir / INSTANCES_FILE).unlink(missing_ok=True)


def replica_record(instance: Instance) -> dict:
    """What the last `up` recorded about the read replica: {"replica": {...}} or {"reason": "..."}."""
    try:
        record = json.loads((instance.var_dir / REPLICA_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def recorded_replica(instance: Instance) -> Replica | None:
    try:
        return Replica(**replica_record(instance)["replica"])
    except (KeyError, TypeError):
        return None


def record_replica(instance: Instance, replica: Replica | None, reason: str = "") -> None:
    record = {"replica": dataclasses.asdict(replica)} if replica else {"reason": reason}
    instance.var_dir.mkdir(parents=True, exist_ok=True)
    (instance.var_dir / REPLICA_FILE).write_text(json.dumps(record, indent=2) + "\n")


def forget_replica(instance: Instance) -> None:
    (instance.var_dir / REPLICA_FILE).unlink(missing_ok=True)


# --- URLs ------------------------------------------------------------------------------------------------


def url_host(host: str) -> str:
    """Bracket IPv6 literals so that they can stand in a URL."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def broker_vhost(broker_url: str) -> str:
    """The vhost an AMQP URL names; kombu reads an empty path as "/", and so do we."""
    return unquote(urlsplit(broker_url).path[1:]) or "/"


def replace_url_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def host_and_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def redact_url(url: str) -> str:
    """Hide a URL's password before it goes into a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))

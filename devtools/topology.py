"""The one typed model of the system, read from topology.toml: which services exist, where they listen,
how many processes they run, what the gateway routes, and the facts deployments need (who signs tokens,
who calls whom, who sends mail). Every renderer, benchmark and tool reads the system through `load()`;
nothing else parses topology.toml.

Standard library only: the gateway's image renders its nginx configuration with it, and manage_all.py
uses it before its virtualenv exists. The services themselves never read it at run time: every
deployment gives them what they need in their environment (docs/development.md, "Configuration").
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY_FILE = ROOT / "topology.toml"
ACCESS_MODES = ("public", "read", "protected")
MAX_WEB_INSTANCES = 9
# Other platform instances shift every port by a multiple of this (PLATFORM_PORT_OFFSET); two listeners
# whose ports differ by a multiple of it would collide across instances.
INSTANCE_PORT_SPACING = 1000
MONITORING_PORT_KEYS = ("prometheus_port", "alertmanager_port", "alert_receiver_port")


class TopologyError(ValueError):
    """topology.toml says something impossible; the message names the table and the fix."""


@dataclass(frozen=True)
class Route:
    """A path prefix the gateway sends to a service, and who may use it (public, read, protected)."""

    path: str
    access: str


class Named:
    """What a service and a sandbox are called outside Python: in variables and as hosts."""

    name: str

    @property
    def env_name(self) -> str:
        """The name in environment variables: ORDERS in ORDERS_URL."""
        return self.name.upper()

    @property
    def host_name(self) -> str:
        """The name as a host (compose service, Kubernetes Service)."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class Service(Named):
    """One bounded context: a Django project under services/<name>/ with its own database."""

    name: str
    port: int
    web_workers: int = 1
    web_threads: int = 4
    worker_concurrency: int = 1
    worker_metrics_port: int | None = None  # where its Celery worker serves metrics
    instances: int = 1  # web instances behind the gateway; the worker and beat stay single
    routes: tuple[Route, ...] = ()  # what the gateway routes to it
    signs_tokens: bool = False  # holds identity's private key (one service only)
    client_scopes: tuple[str, ...] = ()  # what it may ask identity's client-credentials grant for
    calls: tuple[str, ...] = ()  # services and sandboxes it calls synchronously (REST)
    sends_mail: bool = False  # talks SMTP

    @property
    def directory(self) -> Path:
        return ROOT / "services" / self.name


@dataclass(frozen=True)
class Sandbox(Named):
    """A stand-in for an external system (a WSGI app of ours), run like any other process."""

    name: str
    port: int
    app: str  # "package.module:application", importable from the repository root
    threads: int = 8


@dataclass(frozen=True)
class Gateway:
    """The one public entry point (nginx) and its token verifier."""

    port: int
    verifier_port: int
    login_paths: tuple[str, ...] = ()  # POSTs limited per address by the sign-in zone
    per_user_paths: tuple[str, ...] = ()  # POSTs limited per verified user (order creation)
    refresh_paths: tuple[str, ...] = ()  # POSTs limited per address by a zone of their own
    admin_login_path: str = ""  # the single sign-on login page


@dataclass(frozen=True)
class Monitoring:
    prometheus_port: int
    alertmanager_port: int
    alert_receiver_port: int
    rabbitmq_metrics_port: int  # the broker's plugin: shared infrastructure, never shifted
    scrape_interval: str = "15s"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Infrastructure:
    """Where Postgres, RabbitMQ and Redis run on a developer machine (each overridable from the
    environment: POSTGRES_HOST/POSTGRES_PORT/PG_ADMIN_URL, BROKER_URL, REDIS_URL)."""

    postgres: Endpoint = Endpoint("127.0.0.1", 5432)
    rabbitmq: Endpoint = Endpoint("127.0.0.1", 5672)
    redis: Endpoint = Endpoint("127.0.0.1", 6379)


@dataclass(frozen=True)
class Topology:
    services: tuple[Service, ...]
    sandboxes: tuple[Sandbox, ...] = ()
    infrastructure: Infrastructure = field(default_factory=Infrastructure)
    flower_port: int = 5555
    replica_port: int | None = None  # the instance's streaming read replica of Postgres (devtools.replica)
    instance_port_step: int = 100
    balancer_port_offset: int = 50
    gateway: Gateway | None = None
    monitoring: Monitoring | None = None

    # --- looking things up -----------------------------------------------------------------------------

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise TopologyError(f"unknown service {name!r}: topology.toml has {', '.join(self.service_names)}")

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    @property
    def peers(self) -> tuple[Service | Sandbox, ...]:
        """Everything a service can call by name: the services, then the sandboxes."""
        return (*self.services, *self.sandboxes)

    def peer(self, name: str) -> Service | Sandbox:
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise TopologyError(f"no service or sandbox named {name!r}")

    @property
    def signer(self) -> Service:
        """The one service that signs tokens."""
        return next(service for service in self.services if service.signs_tokens)

    @property
    def clients(self) -> tuple[Service, ...]:
        """Services that ask identity's client-credentials grant for service tokens."""
        return tuple(service for service in self.services if service.client_scopes)

    def callees(self, name: str) -> tuple[str, ...]:
        """Whom `name` calls: its declared REST calls, identity's grant when it is a client, and every
        other service's `/internal/` routes its scopes open (`saga:read`: every service's saga part)."""
        service = self.service(name)
        called = set(service.calls)
        if service.client_scopes:
            called.add(self.signer.name)
        if "saga:read" in service.client_scopes:
            called |= set(self.service_names)
        called.discard(name)
        return tuple(peer.name for peer in self.peers if peer.name in called)

    def callers(self, name: str) -> tuple[str, ...]:
        return tuple(service.name for service in self.services if name in self.callees(service.name))

    # --- ports -------------------------------------------------------------------------------------------

    def web_ports(self, service: Service) -> tuple[int, ...]:
        """The (unshifted) port of each web instance of `service`, instance 1 first."""
        return tuple(service.port + n * self.instance_port_step for n in range(service.instances))

    def balancer_port(self, service: Service) -> int | None:
        """Where peers reach every instance of `service` (the gateway nginx), or None without a gateway."""
        return None if self.gateway is None else service.port + self.balancer_port_offset

    def scaled(self, counts: dict[str, int]) -> Topology:
        """This topology with some services' web instance counts replaced (`up --scale`), re-validated."""
        unknown = sorted(set(counts) - set(self.service_names))
        if unknown:
            raise TopologyError(
                f"--scale {unknown[0]}: no such service; topology.toml has {', '.join(self.service_names)}"
            )
        services = tuple(replace(s, instances=counts.get(s.name, s.instances)) for s in self.services)
        topology = replace(self, services=services)
        topology.validate()
        return topology

    def ports(self) -> list[tuple[int, str]]:
        """Every port the topology assigns, with who listens there (before any instance offset)."""
        ports = [(self.flower_port, "flower")]
        if self.replica_port is not None:
            ports.append((self.replica_port, "the read replica"))
        if self.gateway is not None:
            ports += [
                (self.gateway.port, "the gateway"),
                (self.gateway.verifier_port, "the gateway verifier"),
            ]
        for service in self.services:
            for number, port in enumerate(self.web_ports(service), start=1):
                ports.append((port, f"{service.name} web instance {number}"))
            if (balancer := self.balancer_port(service)) is not None:
                ports.append((balancer, f"{service.name}'s internal balancer"))
            if service.worker_metrics_port is not None:
                ports.append((service.worker_metrics_port, f"{service.name}'s worker metrics"))
        ports += [(sandbox.port, f"sandbox {sandbox.name}") for sandbox in self.sandboxes]
        if self.monitoring is not None:
            ports += [(getattr(self.monitoring, key), f"[monitoring] {key}") for key in MONITORING_PORT_KEYS]
        return ports

    def validate(self) -> None:
        """Refuse what cannot run: no service, two listeners on one port (in this or another instance:
        ports must differ modulo INSTANCE_PORT_SPACING), a port outside 1-65535, more than one signer,
        a call to nothing."""
        if not self.services:
            raise TopologyError("topology.toml lists no [services.<name>] table")
        owners: dict[int, str] = {}
        for port, owner in self.ports():
            if not 0 < port < 65536:
                raise TopologyError(f"topology.toml: {owner} would listen on port {port}, outside 1-65535")
            residue = port % INSTANCE_PORT_SPACING
            if residue in owners:
                raise TopologyError(
                    f"topology.toml: port {port} ({owner}) collides with {owners[residue]}'s in this or "
                    f"another platform instance (instances are {INSTANCE_PORT_SPACING} ports apart; ports "
                    f"must differ modulo {INSTANCE_PORT_SPACING}). Instance n of a service listens on "
                    "port + (n - 1) * instance_port_step and its balancer on port + balancer_port_offset "
                    "([processes]): choose other ports or fewer instances"
                )
            owners[residue] = owner
        signers = [service.name for service in self.services if service.signs_tokens]
        if len(signers) != 1:
            raise TopologyError(
                f"topology.toml: exactly one service signs tokens (signs_tokens), not {signers}"
            )
        names = {peer.name for peer in self.peers}
        for service in self.services:
            unknown = sorted(set(service.calls) - names)
            if unknown:
                raise TopologyError(
                    f"topology.toml: [services.{service.name}] calls {unknown[0]}: no service or sandbox"
                )


# --- reading topology.toml --------------------------------------------------------------------------------


def load(path: Path = TOPOLOGY_FILE) -> Topology:
    """Read and validate topology.toml."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TopologyError(f"{path} is missing: it lists the services to run") from None
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path} is not valid TOML: {exc}") from None
    processes = data.get("processes", {})
    topology = Topology(
        services=tuple(_service(name, table) for name, table in data.get("services", {}).items()),
        sandboxes=tuple(
            Sandbox(
                name=name, port=int(table["port"]), app=table["app"], threads=int(table.get("threads", 8))
            )
            for name, table in data.get("sandbox", {}).items()
        ),
        infrastructure=_infrastructure(data.get("infrastructure", {})),
        flower_port=_positive(processes, "flower_port", 5555, "[processes]"),
        replica_port=(
            _positive(processes, "replica_port", 1, "[processes]") if "replica_port" in processes else None
        ),
        instance_port_step=_positive(processes, "instance_port_step", 100, "[processes]"),
        balancer_port_offset=_positive(processes, "balancer_port_offset", 50, "[processes]"),
        gateway=_gateway(data.get("gateway")),
        monitoring=_monitoring(data.get("monitoring")),
    )
    topology.validate()
    return topology


def _positive(table: dict, key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TopologyError(f"topology.toml: {where} {key} must be a positive integer, not {value!r}")
    return value


def _service(name: str, table: dict) -> Service:
    if "port" not in table:
        raise TopologyError(f"topology.toml: [services.{name}] has no port")
    instances = _positive(table, "instances", 1, f"[services.{name}]")
    if instances > MAX_WEB_INSTANCES:
        raise TopologyError(f"topology.toml: [services.{name}] instances must be at most {MAX_WEB_INSTANCES}")
    routes = []
    for path, access in table.get("gateway_routes", {}).items():
        if access not in ACCESS_MODES:
            raise TopologyError(f"topology.toml: {name} route {path}: access must be one of {ACCESS_MODES}")
        routes.append(Route(path, access))
    return Service(
        name=name,
        port=int(table["port"]),
        web_workers=_positive(table, "web_workers", 1, f"[services.{name}]"),
        web_threads=_positive(table, "web_threads", 4, f"[services.{name}]"),
        worker_concurrency=_positive(table, "worker_concurrency", 1, f"[services.{name}]"),
        worker_metrics_port=int(table["worker_metrics_port"]) if "worker_metrics_port" in table else None,
        instances=instances,
        routes=tuple(routes),
        signs_tokens=bool(table.get("signs_tokens", False)),
        client_scopes=tuple(table.get("client_scopes", ())),
        calls=tuple(table.get("calls", ())),
        sends_mail=bool(table.get("sends_mail", False)),
    )


def _infrastructure(table: dict) -> Infrastructure:
    defaults = Infrastructure()

    def endpoint(key: str) -> Endpoint:
        entry = table.get(key, {})
        default = getattr(defaults, key)
        return Endpoint(str(entry.get("host", default.host)), int(entry.get("port", default.port)))

    return Infrastructure(
        postgres=endpoint("postgres"), rabbitmq=endpoint("rabbitmq"), redis=endpoint("redis")
    )


def _gateway(table: dict | None) -> Gateway | None:
    if not table:
        return None
    return Gateway(
        port=int(table["port"]),
        verifier_port=int(table["verifier_port"]),
        login_paths=tuple(table.get("login_paths", ())),
        per_user_paths=tuple(table.get("per_user_paths", ())),
        refresh_paths=tuple(table.get("refresh_paths", ())),
        admin_login_path=table.get("admin_login_path", ""),
    )


def _monitoring(table: dict | None) -> Monitoring | None:
    if not table:
        return None
    try:
        return Monitoring(
            prometheus_port=int(table["prometheus_port"]),
            alertmanager_port=int(table["alertmanager_port"]),
            alert_receiver_port=int(table["alert_receiver_port"]),
            rabbitmq_metrics_port=int(table["rabbitmq_metrics_port"]),
            scrape_interval=str(table.get("scrape_interval", "15s")),
        )
    except KeyError as missing:
        raise TopologyError(f"topology.toml: [monitoring] needs {missing.args[0]}") from None

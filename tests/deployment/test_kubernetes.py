"""k8s/: every overlay built with kustomize, validated against Kubernetes' schemas, cross-checked against the
code and against the typed topology (devtools.topology)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.deployment.checks import (
    KUBERNETES_VERSIONS,
    OVERLAYS,
    ROOT,
    by_kind,
    k8s_environment_problems,
    k8s_layout_problems,
    k8s_network_problems,
    k8s_topology_problems,
    k8s_workload_problems,
    model,
    rendered,
    run,
    tool,
)

NAMESPACE = "order-platform"


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    return {overlay: rendered(overlay) for overlay in OVERLAYS}


def with_service(topology, name: str, **changes):
    """`topology` with one service's fields changed (dataclasses.replace), as topology.toml could say."""
    services = tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in topology.services)
    return dataclasses.replace(topology, services=services)


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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_builds_without_deprecation_warnings(overlay):
    """No field kustomize 5 calls deprecated (bases, patchesStrategicMerge, vars...): they go next."""
    result = run(tool("kubectl"), "kustomize", str(ROOT / "k8s" / overlay))
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr.lower(), result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_its_workloads_in_kubernetes(overlay, manifests):
    assert k8s_workload_problems(manifests[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_containers_get_what_every_service_needs(overlay, manifests):
    assert k8s_environment_problems(manifests[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_only_what_each_service_uses(overlay, manifests):
    assert k8s_network_problems(manifests[overlay]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_files_match_the_topology(overlay, manifests):
    """Ports, process counts, the signing key, client secrets, callers, the gateway, Flower and the local
    Postgres as devtools.topology says (the kustomizations are written by hand: this is their drift check)."""
    assert k8s_topology_problems(manifests[overlay]) == []


def test_every_service_and_sandbox_has_its_kustomization():
    assert k8s_layout_problems() == []


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
    assert "inventory: may call ['payments'], topology.toml says []" in problems


def test_network_check_catches_a_rule_that_reaches_no_pod_of_the_callee(manifests):
    """A selector with a label the callee's pods lack lets nothing through (payments' rule for the sandbox
    once asked for component=web; the sandbox's pods are component=sandbox)."""
    docs = copy.deepcopy(manifests["overlays/local"])
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "payments")
    rule = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 8190)
    rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "web"
    rule["ports"][0]["port"] = 8191
    problems = k8s_network_problems(docs)
    assert any(
        p.startswith("payments: its rule for payment-provider (") and "matches no pod" in p for p in problems
    )
    assert "payments: its rule for payment-provider opens [8191], not 8190" in problems


def test_network_check_follows_the_topology_model(manifests):
    """Whom a service may call is devtools.topology's callees: a call declared there and missing from the
    policies is reported, as is one the policies allow and the model does not declare."""
    docs = manifests["overlays/production"]
    topology = with_service(model(), "inventory", calls=("catalog",))
    assert "inventory: may call [], topology.toml says ['catalog']" in k8s_network_problems(docs, topology)
    topology = with_service(model(), "orders", calls=(), client_scopes=())
    problems = k8s_network_problems(docs, topology)
    assert any(p.startswith("orders: may call ['catalog', 'identity',") for p in problems), problems


def test_kubernetes_drift_check_catches_a_changed_topology(manifests):
    docs = manifests["overlays/local"]
    topology = with_service(model(), "catalog", port=8112, web_workers=3, worker_concurrency=5)
    topology = with_service(topology, "notifications", sends_mail=False)
    problems = k8s_topology_problems(docs, topology)
    assert "catalog: SERVICE_PORT is '8102', topology.toml says '8112'" in problems
    assert "catalog: its Service's port is 8102, topology.toml says 8112" in problems
    assert "catalog: the web container's ports is [8102], topology.toml says [8112]" in problems
    assert "catalog: WEB_WORKERS is '1', topology.toml says '3'" in problems
    assert "catalog: the worker's --concurrency is '1', topology.toml says '5'" in problems
    assert (
        "orders: CATALOG_URL is 'http://catalog:8102', topology.toml says 'http://catalog:8112'" in problems
    )
    assert "notifications: reaching the SMTP relay is True, topology.toml says False" in problems

    # The signer's key and the clients' secrets follow signs_tokens and client_scopes.
    topology = with_service(model(), "catalog", client_scopes=("saga:read",))
    problems = k8s_topology_problems(docs, topology)
    assert "catalog: web/web's client secrets is [], topology.toml says ['SERVICE_CLIENT_SECRET']" in problems
    assert any(
        p.startswith("identity: web/web's client secrets is ['SERVICE_CLIENT_SECRET_ORDERS']")
        for p in problems
    )
    clients = "identity: SERVICE_CLIENTS is 'orders=saga:read', topology.toml says "
    assert clients + "'catalog=saga:read;orders=saga:read'" in problems

    topology = with_service(
        with_service(model(), "identity", signs_tokens=False), "catalog", signs_tokens=True
    )
    problems = k8s_topology_problems(docs, topology)
    assert "identity: web mounting jwt-private-key is True, topology.toml says False" in problems
    assert "catalog: migrate mounting jwt-private-key is False, topology.toml says True" in problems

    # The gateway and the local Postgres know every service.
    extra = dataclasses.replace(model().services[0], name="shipping", port=8107, worker_metrics_port=8167)
    topology = dataclasses.replace(model(), services=(*model().services, extra))
    problems = k8s_topology_problems(docs, topology)
    assert any(p.startswith("gateway-verifier: GATEWAY_SERVICES is") for p in problems), problems
    assert "postgres: no SHIPPING_DB_PASSWORD" in problems
    layout = k8s_layout_problems(topology)
    assert layout[:2] == [
        "k8s/services/shipping/kustomization.yaml is missing (docs/deployment.md)",
        "k8s/platform/kustomization.yaml does not list ../services/shipping",
    ]
    assert [problem.split(":")[0] for problem in layout[2:]] == [
        "k8s/overlays/local",
        "k8s/overlays/production",
    ]


def test_drift_check_catches_edited_manifests(manifests):
    docs = copy.deepcopy(manifests["overlays/production"])
    worker = by_kind(docs, "Deployment")["payments-worker"]["spec"]["template"]["spec"]["containers"][0]
    worker["command"][worker["command"].index("--concurrency") + 1] = "1"
    verifier = by_kind(docs, "Deployment")["gateway-verifier"]["spec"]["template"]["spec"]["containers"][0]
    verifier["env"] = [e for e in verifier["env"] if e["name"] != "ORDERS_URL"]
    sandbox = by_kind(docs, "NetworkPolicy")["payment-provider"]
    sandbox["spec"]["ingress"][0]["from"] = []
    problems = k8s_topology_problems(docs)
    assert "payments: the worker's --concurrency is '1', topology.toml says '4'" in problems
    assert "gateway-verifier: ORDERS_URL is None, not 'http://orders:8104'" in problems
    assert "sandbox payment_provider: who may call it is [], topology.toml says ['payments']" in problems
    assert "sandbox payment_provider: an ingress rule without `from` admits everyone" in problems


def test_drift_check_catches_process_commands_that_differ(manifests):
    """The processes must run as devtools.deploy says (e.g. the metrics module where the shared package has
    it: a stale `shared.multiproc` would stop every worker at start)."""
    docs = copy.deepcopy(manifests["overlays/production"])
    deployments = by_kind(docs, "Deployment")
    worker = deployments["orders-worker"]["spec"]["template"]["spec"]["containers"][0]
    worker["command"][2] = "shared.multiproc"
    beat = deployments["catalog-beat"]["spec"]["template"]["spec"]["containers"][0]
    beat["command"][-1] = "/var/beat-schedule"
    web = deployments["inventory-web"]["spec"]["template"]["spec"]["containers"][0]
    web["env"] = [e for e in web["env"] if e["name"] != "PROMETHEUS_MULTIPROC_DIR"]
    problems = k8s_topology_problems(docs)
    assert any(
        p.startswith("orders: the worker's command is ['python', '-m', 'shared.multiproc'") for p in problems
    )
    assert any(p.startswith("catalog: beat's command is [") for p in problems)
    assert "inventory: web's PROMETHEUS_MULTIPROC_DIR is None, not '/tmp/prometheus-multiproc'" in problems


def test_worker_autoscaling_uses_queue_depth_in_production(manifests):
    hpas = by_kind(manifests["overlays/production"], "HorizontalPodAutoscaler")
    for service in model().services:
        metrics = hpas[f"{service.host_name}-worker"]["spec"]["metrics"]
        queues = {m["external"]["metric"]["selector"]["matchLabels"]["queue"] for m in metrics}
        assert queues == {f"{service.name}.events", f"{service.name}.tasks"}
        assert hpas[f"{service.host_name}-worker"]["spec"]["minReplicas"] == 2
        web = hpas[f"{service.host_name}-web"]["spec"]
        assert web["metrics"][0]["resource"]["name"] == "cpu"
        assert (web["minReplicas"], web["maxReplicas"]) == (3, 20)


def test_local_workers_scale_on_cpu(manifests):
    """The local overlay's component: no External metrics provider in kind or minikube."""
    hpas = by_kind(manifests["overlays/local"], "HorizontalPodAutoscaler")
    for service in model().services:
        for role in ("web", "worker"):
            spec = hpas[f"{service.host_name}-{role}"]["spec"]
            assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 2)
            assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
    assert hpas["gateway-nginx"]["spec"]["minReplicas"] == 2  # not a service's: left alone


def test_production_runs_the_images_of_the_registry(manifests):
    for doc in by_kind(manifests["overlays/production"], "Deployment").values():
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["image"].startswith("ghcr.io/"), container["image"]
        assert doc["metadata"]["namespace"] == NAMESPACE


def test_local_postgres_init_script_is_compose_s():
    local = (ROOT / "k8s" / "overlays" / "local" / "postgres-init.sh").read_text()
    assert local == (ROOT / "compose" / "postgres" / "init.sh").read_text()


@pytest.mark.parametrize("overlay", ["overlays/local", "overlays/production"])
def test_kubernetes_runs_the_gateway_with_its_verifier(overlay, manifests):
    """nginx and the verifier, each with a Service under the name the rendered nginx.conf uses, and
    policies that let the edge reach exactly the services' web ports, the verifier and Flower."""
    docs = manifests[overlay]
    topology = model()
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert {("Deployment", "gateway-nginx"), ("Deployment", "gateway-verifier")} <= set(objects)
    assert objects[("Service", "gateway")]["spec"]["ports"][0]["port"] == topology.gateway.port
    verifier_port = topology.gateway.verifier_port
    assert objects[("Service", "gateway-verifier")]["spec"]["ports"][0]["port"] == verifier_port
    nginx_pod = objects[("Deployment", "gateway-nginx")]["spec"]["template"]["spec"]
    assert nginx_pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/docs/"
    assert nginx_pod["securityContext"]["runAsNonRoot"] is True
    # Flower's password, which nginx sends on behalf of staff, by reference.
    nginx_env = {e["name"]: e for e in nginx_pod["containers"][0]["env"]}
    assert nginx_env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"] == {
        "name": "flower-secrets",
        "key": "FLOWER_BASIC_AUTH",
    }
    egress = objects[("NetworkPolicy", "gateway-nginx")]["spec"]["egress"]
    names = [rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in egress]
    reached = {(name, rule["ports"][0]["port"]) for name, rule in zip(names, egress, strict=True)}
    expected = {(service.host_name, service.port) for service in topology.services}
    expected |= {("gateway", verifier_port), ("flower", topology.flower_port)}
    assert reached == expected
    verifier_in = objects[("NetworkPolicy", "gateway-verifier")]["spec"]["ingress"][0]["from"][0]
    assert verifier_in["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "nginx"
    assert ("HorizontalPodAutoscaler", "gateway-nginx") in objects
    assert ("PodDisruptionBudget", "gateway-nginx") in objects


FAKE_KUBECTL = """#!{python}
# A stand-in for kubectl that keeps Secrets as JSON files in {store} (create, get, delete, namespaces).
import base64, json, pathlib, sys

store = pathlib.Path({store!r})
args = sys.argv[1:]
if args[:1] == ["-n"]:
    args = args[2:]
if args[:2] == ["get", "namespace"]:
    sys.exit(0 if (store / "namespace").exists() else 1)
if args[:2] == ["create", "namespace"]:
    (store / "namespace").write_text(args[2])
    sys.exit(0)
if args[:3] == ["create", "secret", "generic"]:
    data = {{}}
    for option in args[4:]:
        kind, _, item = option.partition("=")
        key, _, value = item.partition("=")
        data[key] = pathlib.Path(value).read_text() if kind == "--from-file" else value
    (store / (args[3] + ".json")).write_text(json.dumps(data))
    sys.exit(0)
if args[:2] == ["get", "secret"]:
    path = store / (args[2] + ".json")
    if not path.exists():
        sys.exit(1)
    if len(args) > 3:  # -o jsonpath={{.data.KEY}}
        key = args[4].removeprefix("jsonpath={{.data.").removesuffix("}}")
        print(base64.b64encode(json.loads(path.read_text())[key].encode()).decode(), end="")
    sys.exit(0)
if args[:2] == ["delete", "secret"]:
    for name in args[2:]:
        (store / (name + ".json")).unlink(missing_ok=True)
    sys.exit(0)
sys.exit(f"fake kubectl: unexpected {{args}}")
"""


def secret_references(docs: list[dict]) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef and Secret volume item the workloads use."""
    found = set()
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for item in container.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    found.add((reference["name"], reference["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                found.add((volume["secret"]["secretName"], None))
    return found


def test_create_secrets_makes_every_secret_the_local_overlay_uses(manifests, tmp_path):
    """k8s/create-secrets.sh against a stand-in kubectl: every Secret and key the local overlay's
    workloads reference exists afterwards, and a second run keeps them."""
    store = tmp_path / "secrets"
    store.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable, store=str(store)))
    kubectl.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = str(ROOT / "k8s" / "create-secrets.sh")
    first = subprocess.run(
        ["bash", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert first.returncode == 0, first.stdout + first.stderr
    secrets = {path.stem: json.loads(path.read_text()) for path in store.glob("*.json")}
    missing = sorted(
        f"{name}/{key}" if key else name
        for name, key in secret_references(manifests["overlays/local"])
        if name not in secrets or (key and key not in secrets[name])
    )
    assert missing == []
    assert secrets["jwt-public-key"]["jwt-public.pem"].startswith("-----BEGIN PUBLIC KEY-----")
    # The client's secret is the one identity checks.
    assert (
        secrets["orders-secrets"]["SERVICE_CLIENT_SECRET"]
        == (secrets["identity-secrets"]["SERVICE_CLIENT_SECRET_ORDERS"])
    )
    again = subprocess.run(
        ["bash", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "secret/orders-secrets exists: kept" in again.stdout
    assert {path.stem: json.loads(path.read_text()) for path in store.glob("*.json")} == secrets

"""k8s/: every overlay built with kustomize, validated against Kubernetes' schemas, cross-checked."""

from __future__ import annotations

import copy
import tomllib

import pytest
import yaml

from tests.deployment.checks import (
    KUBERNETES_VERSIONS,
    OVERLAYS,
    ROOT,
    by_kind,
    compose_render,
    k8s_environment_problems,
    k8s_network_problems,
    k8s_render,
    k8s_workload_problems,
    rendered,
    run,
    service_names,
    tool,
    topology,
)

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

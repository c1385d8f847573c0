"""k8s/: every overlay built with kustomize, validated against Kubernetes' schemas and the operators' CRDs,
cross-checked against the code and against the typed topology (devtools.topology)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.deployment import crd_schemas
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
from tests.deployment.data_layer import (
    code_topology,
    k8s_broker_problems,
    k8s_broker_topology_problems,
    k8s_database_problems,
    k8s_policy_drift,
    k8s_redis_problems,
    session_state_problems,
)

NAMESPACE = "order-platform"
PRODUCTION = "overlays/production"
# What the production overlay declares for the operators (k8s/data).
OPERATOR_KINDS = {
    "Cluster", "Pooler", "ScheduledBackup", "ObjectStore",  # CloudNativePG, its Barman Cloud plugin
    "RabbitmqCluster", "Vhost", "User", "Permission", "Policy",  # RabbitMQ's Cluster and Topology operators
}  # fmt: skip


def crds() -> crd_schemas.CustomResourceSchemas:
    """The operators' CRDs (../shared/crds): a missing folder fails the test that needs it, with its path."""
    return crd_schemas.load()


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
    """The built-in kinds, against Kubernetes' schemas. kubernetes-validate only warns about a kind it has no
    schema for (and has no option to skip one), so the operators' kinds are left to their CRDs (below) and
    any warning fails: every other manifest must have been validated."""
    output = tmp_path / "manifests.yaml"
    output.write_text(yaml.safe_dump_all([d for d in manifests[overlay] if not crds().is_custom(d)]))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(output))
    assert result.returncode == 0, (
        f"k8s/{overlay} against Kubernetes {version}:\n{result.stdout}{result.stderr}"
    )
    assert "WARN" not in result.stdout, f"k8s/{overlay}: not validated:\n{result.stdout}"


def test_kubernetes_validate_catches_an_invalid_manifest(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}},"
        " spec: {containers: [{name: x, image: x, ports: [{port: 80}]}]}}}\n"
    )
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSIONS[0], str(bad))
    assert result.returncode != 0


def test_kubernetes_validate_warns_about_a_kind_it_cannot_validate(tmp_path):
    """What the test above reads as "not validated": a custom kind is a warning, and exit status 0."""
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: 3}\n"
    )
    result = run(
        tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSIONS[0], str(custom)
    )
    assert result.returncode == 0
    assert "WARN" in result.stdout


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
    assert any(
        p.startswith("catalog-worker/worker: SECRET_KEY given as plain values, not secretKeyRef")
        for p in problems
    )

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
        "k8s/data/services/shipping/kustomization.yaml is missing (docs/deployment.md)",
        "k8s/data/kustomization.yaml does not list services/shipping",
        "k8s/data/credentials.yaml does not name shipping's Secrets (source shipping-config)",
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


# --- the production data layer (k8s/data): the operators' resources ----------------------------------------


def test_production_declares_its_data_layer_for_the_operators(manifests):
    kinds = {doc["kind"] for doc in manifests[PRODUCTION] if crds().is_custom(doc)}
    assert kinds == OPERATOR_KINDS
    for overlay in ("platform", "overlays/local"):
        assert not [doc["kind"] for doc in manifests[overlay] if crds().is_custom(doc)]


def test_custom_resources_validate_against_the_operators_crds(manifests):
    problems = [
        problem for doc in manifests[PRODUCTION] if crds().is_custom(doc) for problem in crds().problems(doc)
    ]
    assert problems == []


def test_crd_check_catches_what_the_api_server_would_refuse_or_drop(manifests):
    """A misspelled field (which the API server would prune silently), a wrong type, a missing required
    field, in a Cluster and in the RabbitmqCluster; each is reported where it is."""
    objects = {(d["kind"], d["metadata"]["name"]): d for d in manifests[PRODUCTION]}
    cluster = copy.deepcopy(objects[("Cluster", "orders-db")])
    cluster["spec"]["instancse"] = cluster["spec"].pop("instances")
    cluster["spec"]["storage"]["size"] = ["20Gi"]
    cluster["spec"]["bootstrap"]["initdb"]["databse"] = "orders"
    cluster["metadata"]["lables"] = {}
    unexpected = "Additional properties are not allowed ({!r} was unexpected)".format
    assert crds().problems(cluster) == [
        f"Cluster orders-db: metadata: {unexpected('lables')}",
        f"Cluster orders-db: spec.bootstrap.initdb: {unexpected('databse')}",
        "Cluster orders-db: spec.storage.size: ['20Gi'] is not of type 'string'",
        "Cluster orders-db: spec: 'instances' is a required property",
        f"Cluster orders-db: spec: {unexpected('instancse')}",
    ]
    rabbitmq = copy.deepcopy(objects[("RabbitmqCluster", "rabbitmq")])
    rabbitmq["spec"]["replicas"] = "3"
    rabbitmq["spec"]["persistence"]["storageClass"] = "fast"
    affinity = rabbitmq["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    del affinity["topologyKey"]
    anti_affinity = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0"
    assert crds().problems(rabbitmq) == [
        f"RabbitmqCluster rabbitmq: {anti_affinity}: 'topologyKey' is a required property",
        f"RabbitmqCluster rabbitmq: spec.persistence: {unexpected('storageClass')}",
        "RabbitmqCluster rabbitmq: spec.replicas: '3' is not of type 'integer'",
    ]


def test_crd_check_follows_the_structural_schema_s_markers(manifests):
    """int-or-string takes either; preserve-unknown-fields keeps what it does not know (a policy's
    definition); an enum refuses other values; a kind no CRD serves is reported."""
    objects = {(d["kind"], d["metadata"]["name"]): d for d in manifests[PRODUCTION]}
    cluster = copy.deepcopy(objects[("Cluster", "orders-db")])
    cluster["spec"]["resources"]["requests"]["cpu"] = 1
    assert crds().problems(cluster) == []
    cluster["spec"]["resources"]["requests"]["cpu"] = {"cores": 1}
    assert crds().problems(cluster) == [
        "Cluster orders-db: spec.resources.requests.cpu: {'cores': 1} is not valid under any of the given "
        "schemas"
    ]
    policy = copy.deepcopy(objects[("Policy", "service-queues")])
    policy["spec"]["definition"]["queue-leader-locator"] = "balanced"
    assert crds().problems(policy) == []
    policy["spec"]["applyTo"] = "queue"
    assert crds().problems(policy) == [
        "Policy service-queues: spec.applyTo: 'queue' is not one of "
        "['queues', 'classic_queues', 'quorum_queues', 'streams', 'exchanges', 'all']"
    ]
    unknown = {"apiVersion": "rabbitmq.com/v1", "kind": "Queue", "metadata": {"name": "x"}}
    assert crds().problems(unknown) == ["Queue x: no CRD serves rabbitmq.com/v1 Queue"]


def test_missing_crds_fail_with_where_they_were_expected(tmp_path):
    with pytest.raises(crd_schemas.MissingCrds, match=str(tmp_path / "crds")):
        crd_schemas.load(tmp_path / "crds")


def test_every_service_has_its_database_cluster_and_reaches_it(manifests):
    """A Cluster of three per service with a Pooler, WAL archiving, a ScheduledBackup and an ObjectStore that
    exists; each process's DATABASE_URL/DATABASE_REPLICA_URL at its own cluster, with its generated Secret."""
    assert k8s_database_problems(manifests[PRODUCTION]) == []


def test_database_check_catches_what_is_wrong(manifests):
    docs = copy.deepcopy(manifests[PRODUCTION])
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    objects[("Cluster", "catalog-db")]["spec"]["instances"] = 1
    objects[("Cluster", "inventory-db")]["spec"]["plugins"][0]["parameters"]["barmanObjectName"] = "nowhere"
    objects[("Cluster", "notifications-db")]["spec"]["backup"] = {"barmanObjectStore": {}}
    del objects[("ObjectStore", "payments-db-backups")]["spec"]["retentionPolicy"]
    docs.remove(objects[("ScheduledBackup", "identity-db-daily")])
    docs.remove(objects[("Pooler", "payments-db-pooler-rw")])
    worker = objects[("Deployment", "orders-worker")]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in worker["env"]}
    env["DATABASE_URL"]["value"] = env["DATABASE_URL"]["value"].replace(
        "$(SERVICE_NAME)-db-rw", "payments-db-rw"
    )
    env["DATABASE_REPLICA_URL"]["value"] = env["DATABASE_REPLICA_URL"]["value"].replace("-db-ro", "-db-rw")
    env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] = "payments-db-app"
    web = objects[("Deployment", "catalog-web")]["spec"]["template"]["spec"]["containers"][0]
    url = next(item for item in web["env"] if item["name"] == "DATABASE_URL")
    url["value"] = url["value"].removesuffix("?disable_server_side_cursors=True")
    problems = k8s_database_problems(docs)
    assert "Cluster catalog-db: 1 instances, not 3" in problems
    assert "Cluster inventory-db: its ObjectStore 'nowhere' does not exist" in problems
    assert (
        "Cluster notifications-db: backup.barmanObjectStore is deprecated (the Barman Cloud plugin)"
        in problems
    )
    assert "ObjectStore payments-db-backups: no retentionPolicy (backups would be kept forever)" in problems
    assert "Cluster identity-db: no ScheduledBackup through the Barman Cloud plugin" in problems
    assert "Cluster payments-db: no rw Pooler" in problems
    assert (
        "orders-worker/worker: DATABASE_URL reaches payments-db-rw, not orders-db-pooler-rw or orders-db-rw"
        in problems
    )
    assert "orders-worker/worker: DATABASE_REPLICA_URL reaches orders-db-rw, not orders-db-ro" in problems
    wrong_secret = "('payments-db-app', 'password')"
    assert (
        f"orders-worker/worker: DATABASE_URL's password is not orders-db-app/password: {wrong_secret}"
        in problems
    )
    assert (
        "catalog-web/web: DATABASE_URL goes through catalog-db-pooler-rw (transaction pooling) with "
        "server-side cursors on: add ?disable_server_side_cursors=True"
    ) in problems
    # The web still names the pooler that was removed; the replica's URL shares the wrong password.
    assert "payments-web/web: DATABASE_URL reaches payments-db-pooler-rw, not payments-db-rw" in problems
    assert (
        f"orders-worker/worker: DATABASE_REPLICA_URL's password is not orders-db-app/password: {wrong_secret}"
        in problems
    )
    assert len(problems) == 13, problems  # and payments-web's init container, like its web container
    labels = objects[("Cluster", "orders-db")]["spec"]["inheritedMetadata"]["labels"]
    del labels["db.order-platform/orders"]
    assert (
        'orders: Cluster orders-db: its pods lack db.order-platform/orders: "true" (orders cannot reach them)'
        in (k8s_database_problems(docs))
    )


def test_every_process_using_redis_may_reach_the_managed_redis(manifests):
    """Production's Redis is a managed service, outside the cluster: the processes that use it are let out
    to its address range (k8s/data/redis.yaml). The local overlay runs a Redis pod, which the services'
    own rules reach."""
    assert k8s_redis_problems(manifests[PRODUCTION]) == []
    assert k8s_redis_problems(manifests["overlays/local"]) == []
    docs = [d for d in manifests[PRODUCTION] if d["metadata"]["name"] != "managed-redis"]
    problems = k8s_redis_problems(docs)
    assert "orders-web: gets REDIS_URL, but no NetworkPolicy lets it reach the managed Redis" in problems
    assert (
        "gateway-verifier: gets REDIS_URL, but no NetworkPolicy lets it reach the managed Redis" in problems
    )
    assert not any(problem.startswith(("flower", "gateway-nginx")) for problem in problems)


def test_no_session_state_where_the_web_runs():
    """The web processes reach Postgres through PgBouncer's transaction pooling: a session-level lock, SET or
    LISTEN there would be taken on one server connection and lost (or leaked to another client) after the
    transaction. The one module that holds a session lock runs in workers and migrations only."""
    assert session_state_problems() == []


def test_session_state_check_finds_a_session_lock(tmp_path):
    module = tmp_path / "services" / "orders" / "orders" / "services.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        'cursor.execute("SELECT pg_advisory_xact_lock(1)")\n'
        'cursor.execute("SET LOCAL lock_timeout = 100")\n'
        'cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])\n'
        'cursor.execute("SET statement_timeout = 100")\n'
    )
    (tmp_path / "shared" / "shared").mkdir(parents=True)
    problems = session_state_problems(tmp_path)
    assert [problem.split(" (")[0] for problem in problems] == [
        "services/orders/orders/services.py:3: session state",
        "services/orders/orders/services.py:4: session state",
    ]


def test_every_service_reaches_the_broker_cluster_with_its_own_user(manifests):
    assert k8s_broker_problems(manifests[PRODUCTION]) == []


def test_broker_check_catches_what_is_wrong(manifests):
    docs = copy.deepcopy(manifests[PRODUCTION])
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    objects[("RabbitmqCluster", "rabbitmq")]["spec"]["replicas"] = 1
    docs.remove(objects[("Permission", "payments-broker")])
    job = objects[("Job", "inventory-migrate")]["spec"]["template"]["spec"]["containers"][0]
    url = next(item for item in job["env"] if item["name"] == "BROKER_URL")
    url["value"] = url["value"].replace("/platform", "/")
    problems = k8s_broker_problems(docs)
    assert "RabbitmqCluster rabbitmq: 1 nodes, not 3" in problems
    assert "payments-web/web: the User payments-broker has no Permission on the vhost 'platform'" in problems
    assert "inventory-migrate/migrate: BROKER_URL's vhost '' is not declared (['platform'])" in problems


def test_the_broker_topology_has_one_owner_the_code(manifests):
    """The overlay declares no exchange, queue or binding the services declare, and its policies set nothing
    the services' queue and exchange arguments set."""
    code = code_topology()
    assert {"orders.events", "orders.tasks", "orders.dead-letter", "domain.unroutable"} <= set(code.queues)
    assert code.exchanges["domain.events"] == {"alternate-exchange": "domain.unroutable"}
    assert k8s_broker_topology_problems(manifests[PRODUCTION], code) == []


def test_broker_topology_check_catches_a_second_owner(manifests):
    docs = copy.deepcopy(manifests[PRODUCTION])
    reference = {"rabbitmqClusterReference": {"name": "rabbitmq"}, "vhost": "platform"}

    def resource(kind: str, object_name: str, **spec) -> dict:
        return {
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": kind,
            "metadata": {"name": object_name},
            "spec": reference | spec,
        }

    docs += [
        resource("Queue", "orders-events", name="orders.events", type="quorum"),
        resource("Exchange", "events", name="domain.events", type="topic"),
        resource("Binding", "payments-events", source="domain.events", destination="payments.events"),
        resource("Policy", "limits", name="limits", pattern=r"\.events$", applyTo="quorum_queues",
                 definition={"delivery-limit": 10, "message-ttl": 60000}),
        resource("OperatorPolicy", "dlx", name="dlx", pattern="^domain", applyTo="exchanges",
                 definition={"alternate-exchange": "elsewhere"}),
        # Its own: no problem.
        resource("Queue", "reports", name="reports.export", type="quorum"),
        resource("Policy", "reports", name="reports", pattern="^reports", definition={"delivery-limit": 3}),
    ]  # fmt: skip
    problems = k8s_broker_topology_problems(docs, code_topology())
    assert "Queue orders-events: declares orders.events, which the code declares" in problems[0]
    assert any(
        p.startswith("Exchange events: declares domain.events, which the code declares") for p in problems
    )
    assert (
        "Binding payments-events: binds domain.events to payments.events, which the code binds itself"
        in problems
    )
    assert "Policy limits: sets delivery-limit on the queue orders.events, whose arguments set it" in problems
    assert (
        "OperatorPolicy dlx: sets alternate-exchange on the exchange domain.events, whose arguments set it"
        in problems
    )
    assert not any("reports" in problem for problem in problems)
    assert len(problems) == 3 + 6 + 1  # the policy matches every service's events queue


def test_broker_policies_are_compose_s(manifests):
    assert k8s_policy_drift(manifests[PRODUCTION]) == []
    docs = copy.deepcopy(manifests[PRODUCTION])
    policy = next(d for d in docs if d["kind"] == "Policy" and d["metadata"]["name"] == "parked-messages")
    policy["spec"]["definition"]["max-length-bytes"] = 1
    assert [p.split(":")[0] for p in k8s_policy_drift(docs)] == ["policy parked-messages (vhost platform)"]


def test_environment_check_catches_a_reference_defined_too_late_and_a_written_password(manifests):
    """Kubernetes leaves $(NAME) as written unless NAME is defined before it: the production URLs need their
    credentials first. And a password written into a URL is a secret in the manifest."""
    docs = copy.deepcopy(manifests[PRODUCTION])
    worker = by_kind(docs, "Deployment")["orders-worker"]["spec"]["template"]["spec"]["containers"][0]
    user = worker["env"].pop(0)
    assert user["name"] == "DATABASE_USER"
    worker["env"].append(user)
    web = by_kind(docs, "Deployment")["payments-web"]["spec"]["template"]["spec"]["containers"][0]
    url = next(item for item in web["env"] if item["name"] == "DATABASE_URL")
    url["value"] = url["value"].replace("$(DATABASE_PASSWORD)", "hunter2")
    problems = k8s_environment_problems(docs)
    assert (
        "orders-worker/worker: DATABASE_URL refers to $(DATABASE_USER), which is not defined before it"
        in problems
    )
    assert any(
        p.startswith("orders-worker/worker: DATABASE_URL, DATABASE_REPLICA_URL given as plain")
        for p in problems
    )
    assert any(p.startswith("payments-web/web: DATABASE_URL given as plain values") for p in problems)


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

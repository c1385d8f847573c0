"""compose/: validated against the compose specification, cross-checked against the code it runs, and
checked for drift against the typed topology (devtools.topology): the compose files are written by hand."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from devtools import deploy
from devtools.instance import load_platform
from devtools.programs import service_programs
from tests.deployment import checks
from tests.deployment.checks import (
    COMPOSE_FILE,
    HOST_INFRA_FILE,
    ROOT,
    compose_environment_problems,
    compose_files,
    compose_health_problems,
    compose_migration_problems,
    compose_render,
    compose_role_problems,
    compose_topology_problems,
    environment,
    included_files,
    load_compose,
    load_module,
    model,
    required_variables,
    run,
    settings_reads,
    tool,
    without_venv,
)

# --- compose ------------------------------------------------------------------------------------------------


def test_the_main_compose_file_includes_the_two_stacks():
    assert [path.name for path in included_files()] == ["infrastructure.yml", "observability.yml"]
    assert HOST_INFRA_FILE not in included_files(), "the host's infrastructure is standalone"


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
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
    assert compose_health_problems(load_compose(HOST_INFRA_FILE)) == []


def test_web_worker_and_beat_wait_for_their_migration_job():
    assert compose_migration_problems(load_compose()) == []


def test_compose_cross_checks_catch_what_is_missing():
    doc = load_compose()
    broken = copy.deepcopy(doc)
    del broken["services"]["orders-beat"]
    assert compose_role_problems(broken) == ["orders: no beat entry ('orders-beat') in compose"]

    broken = copy.deepcopy(doc)
    env = broken["services"]["orders-worker"]["environment"]
    del env["DATABASE_URL"], env["CATALOG_URL"]  # orders calls catalog
    env["BROKR_URL"] = "amqp://typo"
    problems = compose_environment_problems(broken)
    assert "orders-worker: CATALOG_URL, DATABASE_URL not set" in problems
    assert "orders-worker: BROKR_URL set but read by nothing (a typo?)" in problems

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


def test_compose_matches_the_topology():
    assert compose_topology_problems(load_compose()) == []


def test_topology_drift_check_catches_compose_edited_wrongly():
    doc = load_compose()
    broken = copy.deepcopy(doc)
    services = broken["services"]
    services["orders"]["ports"] = ["127.0.0.1:8114:8114"]
    services["catalog-worker"]["command"][
        services["catalog-worker"]["command"].index("--concurrency") + 1
    ] = "3"
    services["inventory-beat"]["environment"]["WEB_THREADS"] = "16"
    services["payments-worker"]["environment"]["WORKER_METRICS_PORT"] = "9999"
    services["identity-migrate"]["secrets"].remove("jwt_private_key")
    del services["identity-migrate"]["environment"]["JWT_PRIVATE_KEY_FILE"]
    services["catalog"]["secrets"].append("jwt_private_key")
    del services["orders-beat"]["environment"]["SERVICE_CLIENT_SECRET"]
    services["identity"]["environment"]["SERVICE_CLIENT_SECRET_ORDERS"] = "${SOMETHING_ELSE:?x}"
    del services["notifications-worker"]["depends_on"]["mailpit"]
    del services["payment-provider"]
    services["gateway-verifier"]["command"][
        services["gateway-verifier"]["command"].index("--threads") + 1
    ] = "4"
    services["gateway"]["environment"]["GATEWAY_LOGIN_RATE"] = "${GATEWAY_LOGIN_RATE:-50r/m}"
    del services["gateway"]["depends_on"]["payments"]
    services["flower"]["ports"] = ["127.0.0.1:5556:5555"]
    services["prometheus"]["ports"] = ["127.0.0.1:9091:9090"]
    services["postgres"]["environment"]["PLATFORM_DATABASES"] = "identity catalog inventory orders payments"
    services["redis"]["image"] = "redis:latest"
    services["shipping-worker"] = copy.deepcopy(services["orders-worker"])
    del services["catalog-seed"]
    problems = compose_topology_problems(broken)
    expected = [
        "orders: ports is ['127.0.0.1:8114:8114'], topology.toml says ['127.0.0.1:8104:8104']",
        "catalog-worker: command is",
        "inventory-beat: WEB_THREADS is '16', topology.toml says '4'",
        "payments-worker: WORKER_METRICS_PORT is '9999', topology.toml says '8165'",
        "identity-migrate: lacks the JWT private key, but signs_tokens is True",
        "catalog: gets the JWT private key, but signs_tokens is False",
        "orders-beat: SERVICE_CLIENT_SECRET does not follow client_scopes ('saga:read',)",
        "identity: SERVICE_CLIENT_SECRET_ORDERS is not orders's SERVICE_CLIENT_SECRET",
        "notifications-worker: waits for mailpit is False, sends_mail is True",
        "sandbox payment_provider: no entry 'payment-provider' in compose",
        "gateway-verifier: command is",
        "gateway: GATEWAY_LOGIN_RATE is '${GATEWAY_LOGIN_RATE:-50r/m}', topology.toml says",
        "gateway: does not wait for payments to be healthy",
        "flower: ports is ['127.0.0.1:5556:5555'], topology.toml says ['127.0.0.1:5555:5555']",
        "prometheus: ports is ['127.0.0.1:9091:9090'], topology.toml says ['127.0.0.1:9090:9090']",
        "postgres: PLATFORM_DATABASES is",
        "redis: image is 'redis:latest', topology.toml says 'redis:7.4-alpine'",
        "shipping-worker: no such service in topology.toml (left behind?)",
        "catalog-seed: missing",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    assert len(problems) == len(expected), problems


def test_topology_drift_check_catches_a_topology_compose_does_not_follow():
    """The other direction: topology.toml changed (a process size, a port, a new service, another
    signer), compose not yet."""
    topology = model()
    orders = replace(topology.service("orders"), web_threads=16, worker_concurrency=3)
    shipping = replace(topology.service("catalog"), name="shipping", port=8107, worker_metrics_port=8167)
    changed = replace(
        topology,
        services=(*(orders if s.name == "orders" else s for s in topology.services), shipping),
        flower_port=5566,
    )
    problems = compose_topology_problems(load_compose(), changed)
    for start in (
        "orders: WEB_THREADS is '8', topology.toml says '16'",
        "orders-worker: command is",
        "flower: its command does not listen on --port=5566",
        "gateway: does not wait for shipping to be healthy",
        "gateway-verifier: GATEWAY_SERVICES is",
        "postgres: SHIPPING_DB_PASSWORD not set",
        "shipping: missing, topology.toml has shipping",
        "shipping-worker: missing, topology.toml has shipping",
    ):
        assert any(problem.startswith(start) for problem in problems), (start, problems)
    assert "orders-migrate: WEB_THREADS is '8', topology.toml says '16'" in problems, "every entry of orders"


def test_load_compose_adds_up_the_included_files_and_refuses_a_clash(tmp_path):
    (tmp_path / "main.yml").write_text(
        "name: p\ninclude: [stack.yml]\nx-base: &base {image: a, restart: unless-stopped}\n"
        "services:\n  web: {<<: *base, depends_on: {db: {condition: service_healthy}}}\n"
        "  worker: {<<: *base, image: b}\n"
    )
    (tmp_path / "stack.yml").write_text("services:\n  db: {image: postgres}\nvolumes:\n  data: {}\n")
    project = load_compose(tmp_path / "main.yml")
    assert project["name"] == "p" and "x-base" in project
    assert project["services"] == {
        "web": {
            "image": "a",
            "restart": "unless-stopped",
            "depends_on": {"db": {"condition": "service_healthy"}},
        },
        "worker": {"image": "b", "restart": "unless-stopped"},
        "db": {"image": "postgres"},
    }
    assert project["volumes"] == {"data": {}}
    assert compose_health_problems(project) == [
        'web: no healthcheck (and not a one-shot job with restart: "no")',
        'worker: no healthcheck (and not a one-shot job with restart: "no")',
        'db: no healthcheck (and not a one-shot job with restart: "no")',
        "web: waits for db to be healthy, but it has no healthcheck",
    ]

    (tmp_path / "stack.yml").write_text("services:\n  worker: {image: c}\n")
    with pytest.raises(ValueError, match=r"stack\.yml defines services worker already defined"):
        load_compose(tmp_path / "main.yml")
    (tmp_path / "stack.yml").unlink()
    with pytest.raises(ValueError, match=r"main\.yml includes stack\.yml, which does not exist"):
        load_compose(tmp_path / "main.yml")


def test_environment_reads_are_found_in_the_settings():
    names, patterns = settings_reads("orders")
    assert {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY", "CART_TTL_SECONDS"} <= set(names)
    assert any(pattern.fullmatch("CATALOG_URL") for pattern in patterns)
    assert "PAYMENT_DEADLINE_SECONDS" not in names, "another service's variable"


def test_a_variable_without_default_in_code_becomes_required(tmp_path, monkeypatch):
    # A copy of what the checks read, with one new variable that has no default in orders' settings.
    files = [Path("topology.toml"), Path("shared/shared/settings.py"), Path("shared/shared/auth/keys.py")]
    files += [path.relative_to(ROOT) for path in ROOT.glob("services/*/config/settings.py")]
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((ROOT / path).read_text())
    with (tmp_path / "services" / "orders" / "config" / "settings.py").open("a") as settings:
        settings.write('\nNEW_THING = env.str("NEW_REQUIRED_THING")\n')
    monkeypatch.setattr(checks, "ROOT", tmp_path)
    assert "NEW_REQUIRED_THING" in required_variables("orders")
    problems = compose_environment_problems(load_compose(COMPOSE_FILE))
    assert "orders: NEW_REQUIRED_THING not set" in problems
    assert "catalog: NEW_REQUIRED_THING not set" not in problems


def test_compose_postgres_creates_one_private_database_per_service():
    postgres = load_compose()["services"]["postgres"]
    env = environment(postgres)
    assert env["PLATFORM_DATABASES"].split() == list(model().service_names)
    for service in model().services:
        assert f"{service.env_name}_DB_PASSWORD" in env
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
    assert (match["user"], match["vhost"]) == (deploy.BROKER_USER, deploy.BROKER_VHOST)
    policies = {policy["name"]: policy for policy in definitions["policies"]}
    for service in model().service_names:
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
    for service in model().services:
        block = doc["services"][service.host_name]
        env = environment(block)
        assert env["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
        assert (env["EMAIL_HOST"], env["EMAIL_PORT"]) == ("mailpit", "1025")
        assert env["JWT_PUBLIC_KEY_FILE"] == "/run/secrets/jwt_public_key"
        signs = service.signs_tokens
        assert ("jwt_private_key" in block["secrets"]) == signs, (
            f"{service.name}: only the signer gets the private key"
        )
        assert ("JWT_PRIVATE_KEY_FILE" in env) == signs
    assert set(doc["secrets"]) == {"jwt_private_key", "jwt_public_key"}


def test_env_example_lists_every_required_compose_variable():
    text = "".join(path.read_text() for path in compose_files())
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = (ROOT / "compose" / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert required - listed == set()
    assert not re.search(r"^[A-Z0-9_]+=\S", example, flags=re.MULTILINE), ".env.example holds no secret value"


def test_host_infra_compose_uses_the_local_default_ports_and_the_pinned_images():
    infra = model().infrastructure
    doc = load_compose(HOST_INFRA_FILE)
    container_ports = {"postgres": 5432, "rabbitmq": 5672, "redis": 6379}
    assert set(doc["services"]) == set(container_ports)
    for name, container_port in container_ports.items():
        published = doc["services"][name]["ports"][0]
        assert published == f"127.0.0.1:{getattr(infra, name).port}:{container_port}"
        assert doc["services"][name]["image"] == deploy.IMAGES[name]


def test_compose_runs_the_gateway_in_front_of_every_service():
    doc = load_compose()
    topology = model()
    gateway, verifier = doc["services"]["gateway"], doc["services"]["gateway-verifier"]
    assert gateway["build"]["target"] == verifier["build"]["target"] == "gateway"
    assert gateway["ports"] == [f"127.0.0.1:{topology.gateway.port}:{topology.gateway.port}"]
    for service in topology.services:
        assert gateway["depends_on"][service.host_name] == {"condition": "service_healthy"}
        url = f"http://{service.host_name}:{service.port}"
        assert verifier["environment"][f"{service.env_name}_URL"] == url
    assert verifier["environment"]["GATEWAY_SERVICES"].split(",") == list(topology.service_names)
    assert "jwt_public_key" in verifier["secrets"] and "jwt_private_key" not in verifier["secrets"]
    assert "/live" in " ".join(verifier["healthcheck"]["test"])


def test_compose_worker_and_beat_commands_match_manage_all():
    platform = load_platform()
    doc = load_compose()
    for service in platform.topology.services:
        programs = {p.name.rsplit("-", 1)[1]: p.command for p in service_programs(platform, service)}
        host = model().service(service.name).host_name
        worker = without_venv(programs["worker"])
        assert doc["services"][f"{host}-worker"]["command"] == worker
        beat = [Path(programs["beat"][0]).name, *programs["beat"][1:-1], deploy.BEAT_SCHEDULE]
        assert doc["services"][f"{host}-beat"]["command"] == beat


# --- generated files ----------------------------------------------------------------------------------------


def stale_outputs(renderer) -> list[str]:
    return [
        str(path.relative_to(ROOT))
        for path, text in renderer.outputs().items()
        if not path.exists() or path.read_text() != text
    ]


def test_committed_compose_files_equal_the_renderers_output():
    # compose/prometheus/prometheus.yml only: the compose files are written by hand (drift: above).
    assert [path.name for path in compose_render.outputs()] == ["prometheus.yml"]
    stale = stale_outputs(compose_render)
    assert stale == [], f"out of date, run `.venv/bin/python compose/render.py`: {', '.join(stale)}"

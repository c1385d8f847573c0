"""compose/: validated against the compose specification and cross-checked against the code it runs."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.deployment import checks
from tests.deployment.checks import (
    COMPOSE_FILE,
    INFRA_FILE,
    ROOT,
    compose_environment_problems,
    compose_health_problems,
    compose_migration_problems,
    compose_render,
    compose_role_problems,
    environment,
    k8s_render,
    load_compose,
    load_module,
    manage_all,
    required_variables,
    run,
    service_names,
    settings_reads,
    tool,
    topology,
    without_venv,
)

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
    monkeypatch.setattr(checks, "ROOT", tmp_path)
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

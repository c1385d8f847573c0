"""What manage_all.py plans before it starts anything (devtools): each process's environment and
secrets, the supervisord configuration, the test suites and the reading of their reports."""

from __future__ import annotations

import dataclasses
import json
import stat

import pytest

from devtools import environment, instance, programs, suites, supervisor, topology
from devtools.console import PlatformError


@pytest.fixture
def platform(tmp_path) -> instance.Platform:
    """The repository's topology as an isolated instance whose var/ folder is the test's."""
    model = topology.load()
    env = {"PLATFORM_PORT_OFFSET": "7000", "PLATFORM_REDIS_DB": "9"}
    endpoints = instance.load_endpoints(model, env)
    planned = instance.resolve_instance("plan", endpoints, env)
    return instance.Platform(
        model, endpoints, dataclasses.replace(planned, var_dir=tmp_path / "var" / "plan")
    )


def test_an_instance_is_shifted_and_isolated(platform):
    plan = platform.instance
    assert (plan.port(8101), plan.database("orders"), plan.broker_vhost) == (15101, "orders_plan", "plan")
    assert plan.redis_url.endswith("/9")
    with pytest.raises(PlatformError, match="lower-case letters"):
        instance.resolve_instance("Bad-Name", platform.endpoints, {})


def test_each_service_gets_its_own_secrets_and_only_identity_the_signing_key(platform):
    envs = {
        name: environment.service_env(platform, name, inherit=False)
        for name in platform.topology.service_names
    }

    assert [name for name, env in envs.items() if "JWT_PRIVATE_KEY_FILE" in env] == ["identity"]
    assert len({env["SECRET_KEY"] for env in envs.values()}) == len(envs)  # one per service, none shared
    assert envs["orders"]["SERVICE_CLIENT_SECRET"] == envs["identity"]["SERVICE_CLIENT_SECRET_ORDERS"]
    assert envs["identity"]["SERVICE_CLIENTS"] == "orders=saga:read"
    assert all("SERVICE_CLIENT_SECRET" not in env for name, env in envs.items() if name != "orders")
    assert all("insecure" not in env["SECRET_KEY"] and len(env["SECRET_KEY"]) >= 32 for env in envs.values())


def test_secrets_are_made_once_and_kept_private(platform):
    first = environment.instance_secrets(platform)
    second = environment.instance_secrets(platform)
    path = platform.instance.var_dir / environment.SECRETS_FILE

    assert first == second == json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_peers_are_found_through_their_balancers_whatever_the_instance_count(platform):
    urls = environment.peer_urls(platform)
    scaled = dataclasses.replace(platform, topology=platform.topology.scaled({"catalog": 3}))

    assert urls["CATALOG_URL"] == "http://127.0.0.1:15152"  # 8102 + balancer offset + instance offset
    assert urls["PAYMENT_PROVIDER_URL"] == "http://127.0.0.1:15190"
    assert environment.peer_urls(scaled) == urls


def test_a_sandboxs_url_may_be_given_but_a_services_may_not(platform, monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER_URL", "http://127.0.0.1:40001")
    monkeypatch.setenv("CATALOG_URL", "http://127.0.0.1:40002")

    urls = environment.peer_urls(platform)

    assert urls["PAYMENT_PROVIDER_URL"] == "http://127.0.0.1:40001"  # an outside system's, or a proxy's
    assert urls["CATALOG_URL"] == "http://127.0.0.1:15152"  # services are always found through the instance


def test_every_process_of_the_instance_is_planned_once(platform):
    names = [program.name for program in programs.all_programs(platform)]

    assert len(names) == len(set(names))
    for service in platform.topology.service_names:
        assert {f"{service}-web", f"{service}-worker", f"{service}-beat"} <= set(names)
    assert {"payment-provider", "flower", "gateway-nginx", "gateway-verifier"} <= set(names)
    flower = next(program for program in programs.all_programs(platform) if program.name == "flower")
    assert flower.environment["FLOWER_BASIC_AUTH"].startswith("flower:")
    assert all(
        "FLOWER_BASIC_AUTH" not in " ".join(program.command) for program in programs.all_programs(platform)
    )


def test_the_supervisord_configuration_escapes_percent_signs_and_refuses_quotes(platform, tmp_path):
    program = supervisor.Program("probe", ["echo", "100%"], tmp_path, {"A": "50%"})
    conf = supervisor.render_conf(platform.instance, [program])

    assert "command=echo 100%%" in conf and 'environment=A="50%%"' in conf
    with pytest.raises(PlatformError, match="double quote"):
        supervisor.render_program(supervisor.Program("bad", ["x"], tmp_path, {"A": 'say "hi"'}), tmp_path)


def test_the_suites_are_every_part_in_order_and_system_leaves_the_others_alone(platform):
    planned = suites.all_suites(platform)

    assert [suite.name for suite in planned] == [
        "shared", "sandbox", *platform.topology.service_names,
        "system", "browser", "security", "contracts", "chaos",
    ]  # fmt: skip
    system = next(suite for suite in planned if suite.name == "system")
    ignored = {f"--ignore=tests/{name}" for name in ("browser", "security", "contracts", "chaos")}
    assert ignored <= set(system.arguments)
    instances = {
        suite.name: suite.env.get("E2E_INSTANCE") for suite in planned if suite.name in suites.PLATFORM_SUITES
    }
    # chaos' faults restart what its platform depends on, the fuzzer writes thousands of rows: own copies.
    assert (instances["chaos"], instances["contracts"]) == ("chaos", "contracts")
    shared_instances = {instances[name] for name in ("system", "browser", "security")}
    assert not shared_instances & {"chaos", "contracts"}
    with pytest.raises(PlatformError, match="unknown test suite nope"):
        suites.select_suites(planned, ["nope"])


def test_full_asks_every_chosen_suite_for_its_full_set_and_nothing_else_changes(platform):
    chaos = next(suite for suite in suites.all_suites(platform) if suite.name == "chaos")
    full = suites.with_full_sets(chaos)

    assert full.env == chaos.env | {suites.FULL_SETS_VARIABLE: "1"}
    assert suites.FULL_SETS_VARIABLE not in chaos.env
    assert (full.name, full.directory, full.arguments) == (chaos.name, chaos.directory, chaos.arguments)


REPORT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1"
failures="2" skipped="3" tests="20" time="12.5"></testsuite></testsuites>"""


def test_a_suites_result_is_read_from_its_junit_report(tmp_path):
    (tmp_path / "report.xml").write_text(REPORT)
    counts = suites.read_report(tmp_path / "report.xml")

    assert (counts.passed, counts.failures, counts.errors, counts.skipped) == (14, 2, 1, 3)
    assert suites.SuiteResult("s", 1, counts).failed == 3
    assert suites.read_report(tmp_path / "missing.xml") is None


def test_a_suite_that_ran_nothing_or_crashed_counts_as_failed():
    assert suites.SuiteResult("empty", suites.NO_TESTS_COLLECTED, suites.Counts()).failed == 1
    assert not suites.SuiteResult("empty", suites.NO_TESTS_COLLECTED, suites.Counts()).ok
    crashed = suites.SuiteResult("crashed", 4, None)
    assert (crashed.ok, crashed.failed) == (False, 1)
    assert "no report" in crashed.summary


# Set for local processes only, and read by what runs them rather than by a service's settings.
LOCAL_ONLY_VARIABLES = {
    "DJANGO_SETTINGS_MODULE": "manage.py, gunicorn and celery find the settings module",
    "PYTHONUNBUFFERED": "log lines reach supervisord's files at once",
    "PLATFORM_INSTANCE": "shared.observability.tracing's default trace folder, var/<instance>/traces",
}


def test_every_local_service_process_gets_what_its_settings_need_and_nothing_they_ignore(platform):
    """The local counterpart of the compose and Kubernetes environment checks (tests/deployment): what a
    service's web, worker and beat are given locally is what its settings read (devtools.environment)."""
    from tests.deployment.checks import known_variable, required_variables

    for service in platform.topology.services:
        for program in programs.service_programs(platform, service):
            env = program.environment
            missing = [name for name in required_variables(service.name) if not env.get(name)]
            ignored = [name for name in env if not known_variable(service.name, name)]
            unknown = [name for name in ignored if name not in LOCAL_ONLY_VARIABLES]
            assert (program.name, missing, unknown) == (program.name, [], [])
    orders = programs.service_programs(platform, platform.topology.service("orders"))[0].environment
    assert orders["PLATFORM_SERVICES"] == ",".join(platform.topology.service_names)
    assert orders["CATALOG_URL"] == environment.peer_urls(platform)["CATALOG_URL"]

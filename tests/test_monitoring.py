"""Monitoring: alert rules (promtool), configurations (promtool, amtool), dashboards, the alert receiver;
then, on the e2e instance, every scrape target up, every dashboard query answered with data after real
orders, and an alert that travels Prometheus -> Alertmanager -> the receiver.

promtool and amtool come with Debian's prometheus and prometheus-alertmanager packages (.ci/run installs
them): their absence fails these tests instead of skipping them.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from devtools import topology as topology_model
from monitoring import alert_receiver
from monitoring import render as monitoring
from shared.testing import answers_ok
from tests.conftest import INSTANCE, PORT_OFFSET, ROOT
from tests.shop import Shop

RULE_FILES = sorted(monitoring.RULES_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted(monitoring.RULE_TESTS_DIR.glob("*.yml"))
DASHBOARD_FILES = sorted(monitoring.DASHBOARDS_DIR.glob("*.json"))
GRAFANA_DIR = ROOT / "monitoring" / "grafana"
# compose runs the monitoring in the observability stack that compose/docker-compose.yml includes.
COMPOSE_FILE = ROOT / "compose" / "observability.yml"
TOPOLOGY = topology_model.load()
EXPECTED_DASHBOARDS = {"overview", "saga", "messaging-and-queues", "infrastructure"}
# What the template variables stand for when a query is run outside Grafana: every value, and a rate
# window long enough to still hold the traffic the test sent.
VARIABLES = {"$__rate_interval": "3m", "$__interval": "1m", "$__range": "1h", "$service": ".+"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y prometheus prometheus-alertmanager")
    return path


def run(*command: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def alert_names(path: Path) -> list[str]:
    return [
        rule["alert"] for group in load_yaml(path)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def dashboards() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of every panel, rows included."""
    panels = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", [])]


def substitute(expression: str) -> str:
    for variable, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        expression = expression.replace(variable, value)
    assert "$" not in expression.replace("$1", ""), f"unknown template variable in {expression}"
    return expression


# --- rules ---------------------------------------------------------------------------------------------


def test_rule_files_pass_promtool_check():
    assert RULE_FILES, "no rule files in monitoring/prometheus/rules"
    result = run(tool("promtool"), "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_passes_its_unit_tests():
    assert RULE_TEST_FILES, "no promtool unit tests in monitoring/prometheus/tests"
    result = run(tool("promtool"), "test", "rules", *RULE_TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TEST_FILES), result.stdout


def test_every_alert_has_a_unit_test_that_fires_it_and_one_where_it_stays_silent():
    fired, silent = set(), set()
    for path in RULE_TEST_FILES:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    every_alert = {name for path in RULE_FILES for name in alert_names(path)}
    assert every_alert >= {
        "ServiceDown", "HighErrorRatio", "HighLatencyP99", "OrdersStuck", "OutboxLag",
        "DeadLettersWaiting", "CircuitOpen", "QueueBacklog", "MessagesRejected",
    }  # fmt: skip
    assert every_alert - fired == set(), "alerts no unit test fires"
    assert every_alert - silent == set(), "alerts no unit test shows silent"


def test_every_rule_file_has_its_own_unit_test_file():
    tested = {rule_file for path in RULE_TEST_FILES for rule_file in load_yaml(path)["rule_files"]}
    assert {f"../rules/{path.name}" for path in RULE_FILES} == tested


def test_a_wrong_expectation_fails_promtool(tmp_path):
    """The unit tests can fail: the same test with the alert expected too early is refused."""
    source = monitoring.RULE_TESTS_DIR / "availability.test.yml"
    broken = source.read_text().replace(
        "eval_time: 2m\n        alertname: ServiceDown", "eval_time: 75s\n        alertname: ServiceDown", 1
    )
    assert broken != source.read_text()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules").symlink_to(monitoring.RULES_DIR)
    (tmp_path / "tests" / "broken.test.yml").write_text(broken)
    result = run(tool("promtool"), "test", "rules", tmp_path / "tests" / "broken.test.yml")
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_every_alert_has_a_severity_and_says_what_happened():
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
                assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


# --- configurations ------------------------------------------------------------------------------------


def local_monitoring(tmp_path: Path, instance: str = "probe", offset: int = 4321):
    return monitoring.monitoring_of(
        topology_model.load(), instance, tmp_path, offset, rabbitmq_host="127.0.0.1", vhost=instance
    )


def test_rendered_prometheus_config_passes_promtool_and_scrapes_every_process(tmp_path):
    instance = local_monitoring(tmp_path)
    monitoring.write(instance)
    result = run(tool("promtool"), "check", "config", instance.prometheus_config_file)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_yaml(instance.prometheus_config_file)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = {t["labels"]["service"]: t["targets"] for t in jobs["web"]["static_configs"]}
    assert web == {s.name: [f"127.0.0.1:{s.port + 4321}"] for s in TOPOLOGY.services}
    workers = {s.name: s.worker_metrics_port for s in TOPOLOGY.services if s.worker_metrics_port is not None}
    if workers:
        worker = {t["labels"]["service"]: t["targets"] for t in jobs["worker"]["static_configs"]}
        assert worker == {name: [f"127.0.0.1:{port + 4321}"] for name, port in workers.items()}
    assert jobs["rabbitmq-queues"]["params"] == {"vhost": ["probe"], "family": ["queue_coarse_metrics"]}
    table = TOPOLOGY.monitoring
    assert jobs["prometheus"]["static_configs"][0]["targets"] == [f"127.0.0.1:{table.prometheus_port + 4321}"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{table.alertmanager_port + 4321}"
    ]
    assert str(monitoring.RULES_DIR / "*.yml") in config["rule_files"]


def test_compose_prometheus_config_passes_promtool_and_has_the_same_jobs(tmp_path):
    compose = ROOT / "compose" / "prometheus" / "prometheus.yml"
    result = run(tool("promtool"), "check", "config", compose)
    assert result.returncode == 0, result.stdout + result.stderr
    instance = local_monitoring(tmp_path)
    monitoring.write(instance)
    local_jobs = [job["job_name"] for job in load_yaml(instance.prometheus_config_file)["scrape_configs"]]
    assert [job["job_name"] for job in load_yaml(compose)["scrape_configs"]] == local_jobs


def test_alertmanager_configs_pass_amtool_and_route_to_the_receiver(tmp_path):
    result = run(tool("amtool"), "check-config", monitoring.ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    instance = local_monitoring(tmp_path)
    monitoring.write(instance)
    result = run(tool("amtool"), "check-config", instance.alertmanager_config_file)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = load_yaml(instance.alertmanager_config_file)
    [receiver] = rendered["receivers"]
    port = TOPOLOGY.monitoring.alert_receiver_port + 4321
    assert receiver["webhook_configs"][0]["url"] == f"http://127.0.0.1:{port}/alerts"
    assert rendered["route"]["receiver"] == receiver["name"]


def test_missing_binaries_are_named_with_the_packages_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(monitoring.MonitoringError) as problem:
        monitoring.binaries()
    assert "prometheus, promtool, alertmanager" in str(problem.value)
    assert "apt-get install -y prometheus prometheus-alertmanager" in str(problem.value)


def test_up_without_prometheus_fails_with_one_line_before_changing_anything(tmp_path):
    """`up` checks the binaries first: one line on stderr, exit 1, nothing rendered for the instance."""
    python = Path(ROOT / ".venv" / "bin" / "python")
    env = {"PATH": str(tmp_path), "PLATFORM_INSTANCE": "nomonitoring", "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(python), str(ROOT / "manage_all.py"), "up", "--no-install"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "monitoring needs prometheus" in result.stderr
    assert not (ROOT / "var" / "nomonitoring").exists()


def test_compose_mounts_the_monitoring_files_instead_of_copies():
    compose = load_yaml(COMPOSE_FILE)["services"]
    mounts = {
        volume
        for name in ("prometheus", "alertmanager", "grafana")
        for volume in compose[name]["volumes"]
        if volume.startswith("../monitoring/")
    }
    assert mounts == {
        "../monitoring/prometheus/rules:/etc/prometheus/rules:ro",
        "../monitoring/alertmanager:/etc/alertmanager:ro",
        "../monitoring/grafana/provisioning:/etc/grafana/provisioning:ro",
        "../monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro",
    }
    for mount in mounts:
        assert (COMPOSE_FILE.parent / mount.split(":")[0]).resolve().is_dir(), mount
    receiver = compose["alert-receiver"]
    assert monitoring.RECEIVER_APP in receiver["command"]
    assert compose["alertmanager"]["depends_on"]["alert-receiver"] == {"condition": "service_healthy"}
    assert monitoring.COMPOSE_RECEIVER_URL.startswith("http://alert-receiver:")


# --- dashboards ----------------------------------------------------------------------------------------


def test_the_four_dashboards_are_there_with_unique_uids():
    boards = dashboards()
    assert set(boards) == EXPECTED_DASHBOARDS
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    assert all(board["title"] and panel_queries(board) for board in boards.values())


def test_every_panel_uses_the_provisioned_prometheus_data_source():
    sources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    prometheus_uid = next(source["uid"] for source in sources if source["type"] == "prometheus")
    for name, board in dashboards().items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == prometheus_uid, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            assert all(target["datasource"]["uid"] == prometheus_uid for target in panel["targets"])


def test_dashboard_provisioning_points_at_the_mounted_folder():
    provider = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")["providers"][0]
    compose = load_yaml(COMPOSE_FILE)["services"]["grafana"]["volumes"]
    assert f"../monitoring/grafana/dashboards:{provider['options']['path']}:ro" in compose


def test_panel_layouts_do_not_overlap():
    for name, board in dashboards().items():
        taken = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, (name, panel["title"])
            taken |= cells


# --- the alert receiver (WSGI, in process) -------------------------------------------------------------


def call(method: str, path: str, body: bytes = b"", query: str = "") -> tuple[int, dict]:
    answer = {}

    def start_response(status, headers):
        answer["status"] = int(status.split()[0])

    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
    }  # fmt: skip
    data = b"".join(alert_receiver.application(environ, start_response))
    return answer["status"], json.loads(data)


def webhook(status: str, *alerts: dict) -> bytes:
    return json.dumps(
        {"version": "4", "status": status, "receiver": "alert-receiver", "alerts": list(alerts)}
    ).encode()


def alert(name: str, status: str = "firing", **labels) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": name},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": name,
    }


def test_receiver_stores_alerts_as_json_lines_and_lists_them_newest_first(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    assert (
        call(
            "POST", "/alerts", webhook("firing", alert("ServiceDown", service="orders"), alert("OutboxLag"))
        )[0]
        == 200
    )
    assert (
        call("POST", "/alerts", webhook("resolved", alert("ServiceDown", "resolved", service="orders")))[0]
        == 200
    )
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["alertname"] for line in lines] == ["ServiceDown", "OutboxLag", "ServiceDown"]
    status, listing = call("GET", "/alerts")
    assert status == 200 and listing["count"] == 3
    newest = listing["results"][0]
    assert (newest["alertname"], newest["status"]) == ("ServiceDown", "resolved")
    status, firing = call("GET", "/alerts", query="alertname=ServiceDown&status=firing")
    assert firing["count"] == 1 and firing["results"][0]["labels"]["service"] == "orders"
    assert call("GET", "/alerts", query="limit=1")[1]["results"][0]["status"] == "resolved"


def test_receiver_refuses_what_is_not_a_webhook_with_the_error_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    for body in (b"not json", b'{"alerts": "x"}', b'{"alerts": [{"labels": 3}]}'):
        status, answer = call("POST", "/alerts", body)
        assert status == 400 and set(answer["error"]) == {"code", "message", "fields"}, answer
    assert call("GET", "/alerts", query="limit=0")[0] == 400
    assert call("DELETE", "/alerts")[0] == 405
    assert call("GET", "/nowhere")[0] == 404
    assert not (tmp_path / "alerts.jsonl").exists()


# --- live: the e2e instance ----------------------------------------------------------------------------


def monitoring_port(key: str) -> int:
    return getattr(TOPOLOGY.monitoring, key) + PORT_OFFSET


@pytest.fixture(scope="module")
def prometheus(platform, http):
    """A query function against the instance's Prometheus, once it has scraped every target."""
    base = f"http://127.0.0.1:{monitoring_port('prometheus_port')}"

    def query(expression: str) -> list[dict]:
        answer = http.get(f"{base}/api/v1/query", params={"query": expression}, timeout=10)
        assert answer.status_code == 200, (expression, answer.text)
        return answer.json()["data"]["result"]

    query.base = base
    return query


def active_targets(prometheus, http) -> list[dict]:
    return http.get(f"{prometheus.base}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]


def test_prometheus_has_every_rendered_target_up(platform, prometheus, http):
    rendered = load_yaml(ROOT / "var" / INSTANCE / "monitoring" / "prometheus.yml")
    expected = {
        (job["job_name"], target)
        for job in rendered["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert {"web", "prometheus", "alertmanager", "rabbitmq", "rabbitmq-queues"} <= {
        job for job, _ in expected
    }

    def all_up():
        targets = active_targets(prometheus, http)
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t for t in targets}
        return set(seen) == expected and all(t["health"] == "up" for t in targets) and seen

    try:
        seen = wait(all_up, timeout=60)
    except AssertionError:
        report = [
            (t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"])
            for t in active_targets(prometheus, http)
        ]
        pytest.fail(f"targets not all up: expected {sorted(expected)}, got {report}")
    services = {t["labels"].get("service") for (job, _), t in seen.items() if job == "web"}
    assert services == set(TOPOLOGY.service_names)


def place_orders(platform) -> None:
    """Traffic for every panel: a confirmed order, a declined one, reads on every service."""
    shop = Shop(platform)
    customer = shop.new_customer()
    product = shop.new_product(stock=5)
    confirmed = shop.place_order(customer, [(product, 1)])
    declined = shop.place_order(customer, [(product, 1)], payment_token="tok_chargeDeclined")
    assert confirmed.status_code == declined.status_code == 202, (confirmed.text, declined.text)
    assert shop.wait_for_terminal(customer, confirmed.json()["id"])["status"] == "confirmed"
    assert shop.wait_for_terminal(customer, declined.json()["id"])["status"] in {"rejected", "cancelled"}
    shop.payments(confirmed.json()["id"])
    shop.notifications(customer)
    shop.stock(product)


def has_data(result: list[dict]) -> bool:
    """At least one series with a number (NaN, as from a quantile over no requests, is no data)."""
    return any(not math.isnan(float(series["value"][1])) for series in result)


def scrape_interval_seconds() -> float:
    interval = TOPOLOGY.monitoring.scrape_interval
    assert interval.endswith("s") and interval[:-1].isdigit(), interval
    return float(interval[:-1])


def test_every_dashboard_query_returns_data_after_orders(platform, prometheus):
    # Two rounds a few scrapes apart, as on a system with steady traffic: a labelled series is born
    # with its first increment, which rate() cannot see, so the first round makes the series exist
    # and the second one moves them.
    place_orders(platform)
    time.sleep(3 * scrape_interval_seconds())
    place_orders(platform)
    queries = [
        (name, title, expression)
        for name, board in dashboards().items()
        for title, expression in panel_queries(board)
    ]
    assert len(queries) >= 40
    empty = []
    deadline = time.monotonic() + 60  # new series need two scrapes before a rate has a value
    for name, title, expression in queries:
        while not has_data(prometheus(substitute(expression))) and time.monotonic() < deadline:
            time.sleep(2)
        if not has_data(prometheus(substitute(expression))):
            empty.append(f"{name} / {title}: {expression}")
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def test_template_variables_list_every_service(platform, prometheus):
    for board in dashboards().values():
        for variable in board["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            values = {series["metric"][match[2]] for series in prometheus(match[1])}
            assert values == set(TOPOLOGY.service_names), variable["name"]


def receiver_alerts(http, **filters) -> list[dict]:
    url = f"http://127.0.0.1:{monitoring_port('alert_receiver_port')}/alerts"
    answer = http.get(url, params=filters, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_a_stopped_service_reaches_the_alert_receiver(platform, prometheus, http):
    """ServiceDown end to end. The real rule waits a minute; a copy of it without the wait (same
    expression, marked `copy`) is loaded into this instance's rules.d, so the test need not."""
    [service_down] = [
        rule for path in RULE_FILES for group in load_yaml(path)["groups"]
        for rule in group["rules"] if rule.get("alert") == "ServiceDown"
    ]  # fmt: skip
    fast = {**service_down, "for": "0s", "labels": {**service_down["labels"], "copy": "e2e-without-wait"}}
    rules_file = ROOT / "var" / INSTANCE / "monitoring" / "rules.d" / "e2e-service-down.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "e2e", "rules": [fast]}]}))
    try:
        assert http.post(f"{prometheus.base}/-/reload", timeout=30).status_code == 200
        assert platform.supervisorctl("stop", "notifications-web").returncode == 0
        delivered = wait(
            lambda: [
                a for a in receiver_alerts(http, alertname="ServiceDown", status="firing")
                if a["labels"].get("service") == "notifications" and a["labels"].get("copy")
            ],
            timeout=90,
        )  # fmt: skip
        labels = delivered[0]["labels"]
        assert labels["job"] == "web" and labels["severity"] == "critical"
        assert labels["platform_instance"] == INSTANCE
        assert delivered[0]["annotations"]["summary"] == "notifications web is down"
        # The real rule sees the same outage (pending until its minute has passed); its group is
        # evaluated on its own schedule, so it may come a few seconds after the copy.
        real = wait(
            lambda: [
                a
                for a in prometheus('ALERTS{alertname="ServiceDown", service="notifications", job="web"}')
                if "copy" not in a["metric"]
            ],
            timeout=30,
        )
        assert real[0]["metric"]["alertstate"] in {"pending", "firing"}
    finally:
        rules_file.unlink(missing_ok=True)
        http.post(f"{prometheus.base}/-/reload", timeout=30)
        platform.supervisorctl("start", "notifications-web")
    wait(lambda: answers_ok(http, platform.url("notifications", "/health/ready")), timeout=60)


def wait(predicate, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.fixture(scope="module")
def http():  # module-scoped here: the prometheus fixture outlives one test
    session = requests.Session()
    session.trust_env = False
    return session


# Every monitoring page the README and docs/observability.md link, with the port of the default instance.
_MONITORING_LINK = re.compile(r"http://127\.0\.0\.1:(?P<port>9090|9093|9097)(?P<path>/[A-Za-z0-9/_.-]*)")


def test_every_monitoring_page_the_docs_and_up_name_exists(platform, http):
    """Debian's Prometheus has only its classic UI (`/targets` answers 404 there): a link that does not
    answer on this very build is a link a reader cannot follow."""
    documented = set()
    for doc in (ROOT / "README.md", ROOT / "docs" / "observability.md"):
        documented |= {(int(m["port"]), m["path"]) for m in _MONITORING_LINK.finditer(doc.read_text())}
    assert any(path.endswith("/targets") for _port, path in documented), documented
    printed = platform.model(
        "local_monitoring.prometheus_pages(local_monitoring.monitoring_of(platform).prometheus_url)"
    )
    links = [f"http://127.0.0.1:{port + PORT_OFFSET}{path}" for port, path in sorted(documented)]

    for url in [*links, *printed.values()]:
        answer = http.get(url, timeout=10)
        assert answer.status_code == 200, (url, answer.status_code)

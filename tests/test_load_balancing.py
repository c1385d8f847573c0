"""Several web instances of a service behind nginx: topology and `--scale`, passive health checks, and
retries on another instance for idempotent requests only.

The first tests check the topology rules and the rendered configuration without running anything. The
others scale the e2e platform's catalog to two web instances (`manage_all.py up --scale catalog=2`), kill
or freeze one of them under traffic, and scale back to one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from devtools import environment, health, instance, local_gateway, packages, programs
from devtools import topology as topology_model
from devtools.console import PlatformError
from devtools.topology import TopologyError
from gateway import render
from shared.testing import wait_until
from tests.conftest import INSTANCE, ROOT

TOPOLOGY = topology_model.load()
STEP = TOPOLOGY.instance_port_step
BALANCER_OFFSET = TOPOLOGY.balancer_port_offset
ACCESS_LOG = ROOT / "var" / INSTANCE / "log" / "nginx-access.log"
TRIES_TO_REACH_THE_FROZEN_INSTANCE = 12


# --- topology, programs and rendering (no processes) ----------------------------------------------------


def _topology_file(tmp_path, *, step: int | None = None, catalog: str = "") -> topology_model.Topology:
    """The repository's topology.toml with another instance_port_step or more lines for catalog."""
    text = (ROOT / "topology.toml").read_text()
    if step is not None:
        text = re.sub(r"(?m)^instance_port_step = \d+$", f"instance_port_step = {step}", text)
    path = tmp_path / "topology.toml"
    path.write_text(text.replace("[services.catalog]\n", f"[services.catalog]\n{catalog}\n", 1))
    return topology_model.load(path)


def _catalog(model: topology_model.Topology) -> topology_model.Service:
    return model.service("catalog")


def _platform(model: topology_model.Topology, tmp_path, monkeypatch) -> instance.Platform:
    env = {"PLATFORM_PORT_OFFSET": "7000"}
    endpoints = instance.load_endpoints(model, env)
    lbunit = instance.resolve_instance("lbunit", endpoints, env)
    return instance.Platform(model, endpoints, dataclasses.replace(lbunit, var_dir=tmp_path / "var"))


def test_instances_follow_the_documented_port_scheme(tmp_path):
    topology = _topology_file(tmp_path, catalog="instances = 3")
    catalog = _catalog(topology)
    assert catalog.instances == 3
    assert topology.web_ports(catalog) == (8102, 8102 + STEP, 8102 + 2 * STEP)
    assert topology.balancer_port(catalog) == 8102 + BALANCER_OFFSET
    others = [s for s in topology.services if s.name != "catalog"]
    assert all(s.instances == 1 and topology.web_ports(s) == (s.port,) for s in others)


def test_a_port_collision_is_refused_with_both_owners_named(tmp_path):
    with pytest.raises(TopologyError, match=r"port 8103 .* collides with") as refused:
        _topology_file(tmp_path, step=1, catalog="instances = 2")
    assert "catalog web instance 2" in str(refused.value) and "inventory web instance 1" in str(refused.value)
    topology = _topology_file(tmp_path)
    with pytest.raises(TopologyError, match=r"port 8190 .* collides with") as refused:
        dataclasses.replace(topology, instance_port_step=88).scaled({"catalog": 2})
    assert "catalog web instance 2" in str(refused.value) and "sandbox payment_provider" in str(refused.value)


def test_ports_a_platform_instance_apart_are_refused_too(tmp_path):
    """Other instances shift every port by 1000: a worker metrics port of 9102 would be the e2e
    instance's catalog (8102 + 1000) while the dev platform runs."""
    text = (ROOT / "topology.toml").read_text()
    text = text.replace("worker_metrics_port = 8162", "worker_metrics_port = 9102")
    (tmp_path / "topology.toml").write_text(text)
    with pytest.raises(TopologyError, match="modulo 1000") as refused:
        topology_model.load(tmp_path / "topology.toml")
    assert "catalog's worker metrics" in str(refused.value) and "catalog web instance 1" in str(refused.value)


@pytest.mark.parametrize("value", ["0", '"two"', "true", "-1", "10"])
def test_a_bad_instance_count_is_refused(tmp_path, value):
    with pytest.raises(TopologyError, match=r"\[services.catalog\] instances must be"):
        _topology_file(tmp_path, catalog=f"instances = {value}")


def test_scale_arguments_are_parsed_and_checked(tmp_path):
    assert instance.parse_scale(["catalog=2", "orders=3", "catalog=1"]) == {"catalog": 1, "orders": 3}
    for bad in ("catalog", "catalog=0", "catalog=10", "catalog=x", "=2", "Catalog=2"):
        with pytest.raises(PlatformError, match="write SERVICE=N"):
            instance.parse_scale([bad])
    with pytest.raises(TopologyError, match="--scale shipping: no such service"):
        _topology_file(tmp_path).scaled({"shipping": 2})


def test_each_web_instance_is_its_own_program_and_workers_are_not_scaled(tmp_path, monkeypatch):
    platform = _platform(_topology_file(tmp_path).scaled({"catalog": 2}), tmp_path, monkeypatch)
    planned = {p.name: p for p in programs.service_programs(platform, _catalog(platform.topology))}
    assert list(planned) == ["catalog-web", "catalog-web-2", "catalog-worker", "catalog-beat"]
    assert "127.0.0.1:15102" in planned["catalog-web"].command
    assert "127.0.0.1:15202" in planned["catalog-web-2"].command
    assert planned["catalog-web-2"].environment["SERVICE_PORT"] == "15202"
    # Peers call the balancer, whatever the count: scaling catalog changes nothing in their programs.
    assert planned["catalog-web"].environment["CATALOG_URL"] == "http://127.0.0.1:15152"
    single = _platform(_topology_file(tmp_path), tmp_path, monkeypatch)
    assert environment.peer_urls(single) == environment.peer_urls(platform)
    labels = [target.label for target in health.health_targets(platform)]
    assert "catalog" in labels and "catalog instance 2" in labels


def test_nginx_lists_every_instance_and_retries_idempotent_requests_only(tmp_path, monkeypatch):
    platform = _platform(_topology_file(tmp_path).scaled({"catalog": 2}), tmp_path, monkeypatch)
    conf = render.write(local_gateway.gateway_of(platform), env={"FLOWER_BASIC_AUTH": "flower:test"})
    text = conf.read_text()
    upstream = re.search(r"upstream svc_catalog \{(.*?)\}", text, re.DOTALL)[1]
    assert re.findall(r"server (\S+) max_fails=1 fail_timeout=5s;", upstream) == [
        "127.0.0.1:15102", "127.0.0.1:15202",
    ]  # fmt: skip
    # Every place that picks a next instance leaves non-idempotent requests out (no `non_idempotent`).
    assert re.findall(r"(?m)^\s*proxy_next_upstream\s+([^;]*);", text) == ["error timeout http_502 http_503"]
    assert re.search(r"proxy_next_upstream_tries \d+;", text) and re.search(
        r"proxy_next_upstream_timeout \d+s;", text
    )
    balancer = re.search(r"listen 127\.0\.0\.1:15152;(.*?)\n    \}", text, re.DOTALL)[1]
    assert "proxy_pass http://svc_catalog;" in balancer
    nginx = [packages.nginx_binary(), "-t", "-c", str(conf), "-p", str(conf.parent)]
    checked = subprocess.run([*nginx, "-e", str(conf.parent / "error.log")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# --- the running platform -------------------------------------------------------------------------------


def _programs(platform) -> dict[str, tuple[str, int | None]]:
    """supervisord's view: program -> (state, pid)."""
    return platform.processes()


def _healthy(http, port: int, path: str = "/health/ready") -> bool:
    try:
        return http.get(f"http://127.0.0.1:{port}{path}", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def _alive(http, port: int) -> bool:
    """Serving again; readiness would also judge the shared Postgres, which a busy machine may run out of."""
    return _healthy(http, port, "/health/live")


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def _scale(platform, count: int) -> subprocess.CompletedProcess:
    result = platform.manage_all("up", "--no-install", "--scale", f"catalog={count}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def catalogs(platform) -> dict:
    """The e2e platform with two catalog web instances; put back as E2E_SCALE has it afterwards."""
    _scale(platform, 2)
    base = platform.ports["catalog"]
    yield {
        "ports": (base, base + STEP),
        "programs": ("catalog-web", "catalog-web-2"),
        "balancer": base + BALANCER_OFFSET,
    }
    restored = platform.manage_all("up", "--no-install")
    assert restored.returncode == 0, restored.stdout + restored.stderr


@pytest.fixture(scope="module")
def staff(platform) -> dict:
    session = requests.Session()
    session.trust_env = False
    answer = session.post(
        platform.url("identity", "/api/v1/auth/token/"),
        json={"email": "staff@example.com", "password": "staff-demo-pass-1"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access']}"}


def _served_by(request_ids: set[str]) -> list[str]:
    """The upstream address nginx's access log names for each of our requests."""
    addresses = []
    for line in ACCESS_LOG.read_text().splitlines():
        entry = json.loads(line)
        if entry["request_id"] in request_ids:
            addresses.append(entry["upstream"])
    return addresses


def test_both_instances_are_running_and_receive_traffic(platform, http, catalogs):
    programs = _programs(platform)
    assert [programs[name][0] for name in catalogs["programs"]] == ["RUNNING", "RUNNING"]
    assert all(_healthy(http, port) for port in catalogs["ports"])
    status = platform.manage_all("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^  catalog instance 2: .*healthy", status.stdout, re.MULTILINE), status.stdout

    request_ids = {f"lb-{uuid.uuid4().hex}" for _ in range(12)}
    for request_id in request_ids:
        answer = http.get(
            platform.gateway_url("/api/v1/products/"), headers={"X-Request-ID": request_id}, timeout=10
        )
        assert answer.status_code == 200, answer.text
    served = wait_until(
        lambda: (s := _served_by(request_ids)) and len(s) == len(request_ids) and s, timeout=10
    )
    assert {address.rsplit(":", 1)[1] for address in served} == {str(port) for port in catalogs["ports"]}


def _group_signal(pid: int, signum: int) -> None:
    """Signal a gunicorn master and its workers: supervisord makes every program a process group leader."""
    os.killpg(pid, signum)


def _traffic(urls: list[str], stop: threading.Event, outcomes: list) -> None:
    """GET each URL in turn until told to stop, recording status codes and exceptions."""
    session = requests.Session()
    session.trust_env = False
    while not stop.is_set():
        for url in urls:
            try:
                outcomes.append(session.get(url, timeout=20).status_code)
            except requests.RequestException as error:
                outcomes.append(repr(error))
        time.sleep(0.05)  # well under the gateway's per-address rate limit


def test_killing_one_instance_under_traffic_fails_no_request(platform, http, catalogs):
    product = http.get(platform.gateway_url("/api/v1/products/"), timeout=10).json()["results"][0]["id"]
    urls = [
        platform.gateway_url("/api/v1/products/"),
        platform.gateway_url(f"/api/v1/products/{product}/"),
        f"http://127.0.0.1:{catalogs['balancer']}/api/v1/products/{product}/",  # what peers call
    ]
    victim = catalogs["programs"][1]
    old_pid = _programs(platform)[victim][1]
    stop, outcomes = threading.Event(), []
    client = threading.Thread(target=_traffic, args=(urls, stop, outcomes), daemon=True)
    client.start()
    try:
        wait_until(lambda: len(outcomes) >= 20, timeout=30, message="traffic flowing")
        _group_signal(old_pid, signal.SIGKILL)
        restarted = wait_until(
            lambda: (p := _programs(platform)[victim]) and p[0] == "RUNNING" and p[1] != old_pid,
            timeout=60, message="the killed instance restarted",
        )  # fmt: skip
        assert restarted
        wait_until(lambda: _alive(http, catalogs["ports"][1]), timeout=60, message="instance 2 serving again")
        seen = len(outcomes)
        wait_until(lambda: len(outcomes) >= seen + 20, timeout=30, message="traffic after the restart")
    finally:
        stop.set()
        client.join(timeout=30)
    failures = [outcome for outcome in outcomes if outcome != 200]
    assert failures == [], f"{len(failures)} of {len(outcomes)} requests failed: {failures[:5]}"
    assert len(outcomes) >= 40


def _send_in_background(session, method: str, url: str, **kwargs) -> tuple[threading.Thread, dict]:
    result = {}

    def send():
        try:
            result["answer"] = session.request(method, url, timeout=60, **kwargs)
        except requests.RequestException as error:
            result["error"] = error

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, result


def _stuck_on_frozen_instance(platform, catalogs, method: str, url: str, body=None, headers=None):
    """Freeze instance 2 (SIGSTOP), send requests until one is stuck there, then SIGKILL the instance.

    A request that returns while the instance is frozen went to instance 1 and is collected as done.
    Returns (the stuck request's outcome, the bodies sent, the answers of the ones that went elsewhere).
    """
    session = requests.Session()
    session.trust_env = False
    pid = _programs(platform)[catalogs["programs"][1]][1]
    assert pid is not None, "instance 2 is not running"
    _group_signal(pid, signal.SIGSTOP)
    elsewhere, bodies = [], []
    try:
        for _ in range(TRIES_TO_REACH_THE_FROZEN_INSTANCE):
            payload = body() if body else None
            bodies.append(payload)
            thread, result = _send_in_background(session, method, url, json=payload, headers=headers or {})
            thread.join(timeout=1.5)
            if thread.is_alive():  # sent to the frozen instance: now it dies with the request in hand
                _group_signal(pid, signal.SIGKILL)
                thread.join(timeout=30)
                assert not thread.is_alive(), "the gateway never answered"
                return result, bodies, elsewhere
            elsewhere.append(result["answer"])
            # Round robin alternates, unless instance 2 failed lately (the earlier tests kill it): then
            # nginx leaves it out for fail_timeout (5 s), which these pauses let pass.
            time.sleep(1)
        raise AssertionError(
            f"no request reached the frozen instance in {TRIES_TO_REACH_THE_FROZEN_INSTANCE} tries"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already, unless the test failed first
            _group_signal(pid, signal.SIGCONT)


def _wait_for_instance_2(platform, http, catalogs) -> None:
    """Serving again, and RUNNING for supervisord (it reports no pid while the program is STARTING)."""
    wait_until(lambda: _alive(http, catalogs["ports"][1]), timeout=90, message="instance 2 restarted")
    wait_until(
        lambda: _programs(platform)[catalogs["programs"][1]][0] == "RUNNING",
        timeout=30,
        message="instance 2 RUNNING for supervisord",
    )


def test_a_get_stuck_on_a_dying_instance_is_retried_on_another(platform, http, catalogs):
    url = platform.gateway_url("/api/v1/products/")
    try:
        result, _, elsewhere = _stuck_on_frozen_instance(platform, catalogs, "GET", url)
    finally:
        _wait_for_instance_2(platform, http, catalogs)
    assert all(answer.status_code == 200 for answer in elsewhere)
    assert "error" not in result, result
    assert result["answer"].status_code == 200, result["answer"].text


def test_a_post_to_a_dying_instance_fails_and_is_never_replayed(platform, http, catalogs, staff):
    category = http.get(platform.gateway_url("/api/v1/categories/"), timeout=10).json()["results"][0]["slug"]

    def new_product() -> dict:
        sku = f"LB-{uuid.uuid4().hex[:10].upper()}"
        return {"sku": sku, "name": f"Balancing {sku}", "category": category, "price": "3.00"}

    url = platform.gateway_url("/api/v1/products/")
    products_before = http.get(url, headers=staff, timeout=10).json()["count"]
    try:
        result, bodies, elsewhere = _stuck_on_frozen_instance(
            platform, catalogs, "POST", url, new_product, staff
        )
    finally:
        _wait_for_instance_2(platform, http, catalogs)
    assert all(answer.status_code == 201 for answer in elsewhere), [a.text for a in elsewhere]
    assert "error" not in result, result
    answer = result["answer"]
    assert answer.status_code == 502, answer.text  # not passed on to instance 1, where it would succeed
    assert answer.json()["error"]["code"] == "bad_gateway"

    # Exactly the products answered 201 were created; the one that died with its instance was not,
    # neither there nor on instance 1.
    time.sleep(2)  # anything still in flight somewhere would have landed by now
    assert http.get(url, headers=staff, timeout=10).json()["count"] == products_before + len(elsewhere)
    assert [answer.json()["sku"] for answer in elsewhere] == [body["sku"] for body in bodies[:-1]]


def test_scaling_back_to_one_converges_and_leaves_the_rest_running(platform, http, catalogs):
    before = _programs(platform)
    _scale(platform, 1)
    after = _programs(platform)
    assert "catalog-web-2" not in after
    assert wait_until(lambda: _refuses(catalogs["ports"][1]), timeout=30, message="instance 2's port closed")
    # Nothing but the gateway (whose configuration changed) was restarted.
    unchanged = ["catalog-web", "catalog-worker", "orders-web", "identity-web"]
    assert [after[name][1] for name in unchanged] == [before[name][1] for name in unchanged]
    conf = (ROOT / "var" / INSTANCE / "nginx" / "nginx.conf").read_text()
    upstream = re.search(r"upstream svc_catalog \{(.*?)\}", conf, re.DOTALL)[1]
    assert upstream.count("server ") == 1
    for _ in range(6):
        assert http.get(platform.gateway_url("/api/v1/products/"), timeout=10).status_code == 200

    _scale(platform, 2)  # and up again: one new program, no duplicate of anything
    programs = _programs(platform)
    assert programs["catalog-web-2"][0] == "RUNNING"
    assert programs["catalog-web"][1] == before["catalog-web"][1]
    catalog_webs = sorted(name for name in programs if name.startswith("catalog-web"))
    assert catalog_webs == ["catalog-web", "catalog-web-2"]
    assert wait_until(lambda: _alive(http, catalogs["ports"][1]), timeout=30, message="instance 2 serving")

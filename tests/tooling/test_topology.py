"""devtools.topology: the one typed model of topology.toml, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools import topology
from devtools.topology import TopologyError

MINIMAL = """
[processes]
flower_port = 5555

[gateway]
port = 8000
verifier_port = 8099
login_paths = ["/api/v1/auth/token/"]

[services.identity]
port = 8101
signs_tokens = true
gateway_routes = { "/api/v1/auth/" = "protected", "/api/v1/auth/token/" = "public" }

[services.orders]
port = 8104
worker_metrics_port = 8164
client_scopes = ["saga:read"]
calls = ["catalog"]
instances = 2

[services.catalog]
port = 8102

[services.notifications]
port = 8106
sends_mail = true

[sandbox.payment_provider]
port = 8190
app = "sandbox.payment_provider.app:application"
"""


def load(tmp_path: Path, text: str = MINIMAL) -> topology.Topology:
    path = tmp_path / "topology.toml"
    path.write_text(text)
    return topology.load(path)


def test_the_repositorys_topology_loads_and_says_who_does_what():
    model = topology.load()

    assert model.service_names == ("identity", "catalog", "inventory", "orders", "payments", "notifications")
    assert model.signer.name == "identity"
    assert [client.name for client in model.clients] == ["orders"]
    assert [service.name for service in model.services if service.sends_mail] == ["notifications"]
    assert model.callees("payments") == ("payment_provider",)
    assert model.callees("inventory") == ()
    # orders prices at catalog, asks identity for its service token, reads every service's saga part.
    assert model.callees("orders") == ("identity", "catalog", "inventory", "payments", "notifications")
    assert model.callers("catalog") == ("orders",)


def test_every_table_becomes_typed_values(tmp_path):
    model = load(tmp_path)

    orders = model.service("orders")
    assert (orders.port, orders.instances, orders.worker_metrics_port, orders.web_workers) == (
        8104,
        2,
        8164,
        1,
    )
    assert (orders.env_name, model.peer("payment_provider").host_name) == ("ORDERS", "payment-provider")
    assert model.service("identity").routes == (
        topology.Route("/api/v1/auth/", "protected"), topology.Route("/api/v1/auth/token/", "public"),
    )  # fmt: skip
    assert model.gateway.login_paths == ("/api/v1/auth/token/",) and model.gateway.refresh_paths == ()
    assert model.monitoring is None
    assert model.infrastructure.postgres == topology.Endpoint("127.0.0.1", 5432)


def test_instances_and_balancers_follow_the_port_scheme(tmp_path):
    model = load(tmp_path)
    orders = model.service("orders")

    assert model.web_ports(orders) == (8104, 8204)
    assert model.balancer_port(orders) == 8154
    assert model.scaled({"orders": 1}).web_ports(model.scaled({"orders": 1}).service("orders")) == (8104,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("port = 8102", "port = 8104"), "collides with"),
        (("port = 8102", "port = 9104"), "modulo 1000"),
        (("signs_tokens = true", "signs_tokens = false"), "exactly one service signs tokens"),
        (('calls = ["catalog"]', 'calls = ["shipping"]'), "calls shipping"),
        (("instances = 2", "instances = 10"), "at most 9"),
        (("instances = 2", "instances = 0"), "positive integer"),
        (('"/api/v1/auth/" = "protected"', '"/api/v1/auth/" = "secret"'), "access must be one of"),
        (("[services.catalog]\nport = 8102", "[services.catalog]"), "has no port"),
    ],
)
def test_an_impossible_topology_is_refused_with_what_to_fix(tmp_path, change, message):
    with pytest.raises(TopologyError, match=message):
        load(tmp_path, MINIMAL.replace(*change, 1))


def test_scaling_an_unknown_service_is_refused(tmp_path):
    with pytest.raises(TopologyError, match="--scale shipping: no such service"):
        load(tmp_path).scaled({"shipping": 2})


def test_a_missing_or_broken_file_says_so(tmp_path):
    with pytest.raises(TopologyError, match="is missing"):
        topology.load(tmp_path / "nothing.toml")
    (tmp_path / "bad.toml").write_text("[services\n")
    with pytest.raises(TopologyError, match="not valid TOML"):
        topology.load(tmp_path / "bad.toml")


def test_nothing_else_parses_topology_toml():
    """One model, read in one place: every other reader goes through devtools.topology."""
    root = Path(topology.__file__).resolve().parents[1]
    readers = [
        path.relative_to(root)
        for folder in (
            "devtools",
            "gateway",
            "monitoring",
            "compose",
            "k8s",
            "benchmarks",
            "shared",
            "services",
        )
        for path in (root / folder).rglob("*.py")
        if "tomllib" in path.read_text() and path.name != "topology.py" and "/tests/" not in str(path)
    ]
    assert readers == [], f"these parse topology.toml themselves: {readers}"

"""Metrics of the running platform: orders placed through the services move the business counters by
exactly their own facts, summed over every process (gunicorn workers, Celery pool processes), and the
broker's per-queue metrics cover every service's queues. See docs/observability.md.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from devtools import access, instance, provision, topology
from shared.testing import scrape, wait_until
from tests.conftest import INSTANCE, PORT_OFFSET
from tests.shop import Shop

SAGA_SERVICES = ("orders", "inventory", "payments")
RABBITMQ_METRICS_PORT = int(os.environ.get("RABBITMQ_METRICS_PORT", "15692"))  # as manage_all.py


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="module")
def worker_metrics_urls() -> dict[str, str]:
    return {
        service.name: f"http://127.0.0.1:{service.worker_metrics_port + PORT_OFFSET}/metrics"
        for service in topology.load().services
    }


class Snapshot:
    """One scrape of a service's web and worker endpoints; a counter's value is their sum."""

    def __init__(self, platform, worker_metrics_urls: dict[str, str], services=SAGA_SERVICES) -> None:
        self.web = {name: scrape(platform.url(name, "/metrics")) for name in services}
        self.worker = {name: scrape(worker_metrics_urls[name]) for name in services}

    def value(self, service: str, name: str, **labels: str) -> float:
        return self.web[service].value(name, **labels) + self.worker[service].value(name, **labels)


# What three orders must add up to: one paid, one out of stock, one declined.
EXPECTED_DELTAS = [
    ("orders", "orders_created_total", {}, 3),
    ("orders", "orders_terminal_total", {"status": "confirmed", "reason": ""}, 1),
    ("orders", "orders_terminal_total", {"status": "rejected", "reason": "out_of_stock"}, 1),
    ("orders", "orders_terminal_total", {"status": "cancelled", "reason": "payment_declined"}, 1),
    ("orders", "saga_duration_seconds_count", {"status": "confirmed"}, 1),
    ("orders", "saga_duration_seconds_count", {"status": "rejected"}, 1),
    ("orders", "saga_duration_seconds_count", {"status": "cancelled"}, 1),
    ("inventory", "inventory_reservations_total", {"outcome": "reserved"}, 2),
    ("inventory", "inventory_reservations_total", {"outcome": "rejected"}, 1),
    ("inventory", "inventory_reservations_total", {"outcome": "committed"}, 1),
    ("inventory", "inventory_reservations_total", {"outcome": "released"}, 1),
    ("payments", "payments_total", {"outcome": "captured"}, 1),
    ("payments", "payments_total", {"outcome": "declined"}, 1),
]


def deltas(before: Snapshot, after: Snapshot) -> dict[tuple, float]:
    return {
        (service, name, tuple(sorted(labels.items()))): after.value(service, name, **labels)
        - before.value(service, name, **labels)
        for service, name, labels, _expected in EXPECTED_DELTAS
    }


def quiet_snapshot(platform, worker_metrics_urls) -> Snapshot:
    """A snapshot once earlier tests' sagas have finished: no order in flight, counters standing still."""

    def settled():
        first = Snapshot(platform, worker_metrics_urls)
        in_flight = first.web["orders"].value("orders_non_terminal")
        time.sleep(1.0)
        second = Snapshot(platform, worker_metrics_urls)
        return in_flight == 0 and not any(deltas(first, second).values()) and second

    return wait_until(settled, timeout=60, interval=0.5, message="the sagas of earlier tests to finish")


def test_orders_move_the_business_and_saga_counters_by_exactly_their_own_facts(
    platform, shop, worker_metrics_urls
):
    scarce = shop.new_product(stock=1)
    plenty = shop.new_product(stock=5)
    customer = shop.new_customer()
    before = quiet_snapshot(platform, worker_metrics_urls)

    paid = shop.place_order(customer, [(scarce, 1)]).json()["id"]
    assert shop.wait_for_terminal(customer, paid)["status"] == "confirmed"
    out_of_stock = shop.place_order(customer, [(scarce, 1)]).json()["id"]
    declined = shop.place_order(customer, [(plenty, 1)], payment_token="tok_chargeDeclined").json()["id"]
    assert shop.wait_for_terminal(customer, out_of_stock)["status_reason"] == "out_of_stock"
    assert shop.wait_for_terminal(customer, declined)["status_reason"] == "payment_declined"

    expected = {
        (service, name, tuple(sorted(labels.items()))): count
        for service, name, labels, count in EXPECTED_DELTAS
    }
    # Counters move after commit, some in other services' workers: wait until all have arrived.
    wait_until(
        lambda: all(
            moved >= expected[key]
            for key, moved in deltas(before, Snapshot(platform, worker_metrics_urls)).items()
        ),
        timeout=30,
        interval=0.5,
        message="the counters of three orders",
    )
    after = Snapshot(platform, worker_metrics_urls)
    assert deltas(before, after) == expected

    # The saga histogram observed real durations, and the workers ran the saga's tasks.
    assert after.value("orders", "saga_duration_seconds_sum", status="confirmed") > before.value(
        "orders", "saga_duration_seconds_sum", status="confirmed"
    )
    task_runs = {"task": "events.deliver", "state": "succeeded"}
    for service in SAGA_SERVICES:
        ran = after.worker[service].value("celery_task_runs_total", **task_runs)
        assert ran > before.worker[service].value("celery_task_runs_total", **task_runs), service
        assert after.worker[service].value("celery_task_runtime_seconds_count", task="events.deliver") > 0
    assert (
        after.worker["payments"].value(
            "celery_task_runs_total", task="payments.payment_charge", state="succeeded"
        )
        - before.worker["payments"].value(
            "celery_task_runs_total", task="payments.payment_charge", state="succeeded"
        )
        >= 2
    )


def test_web_metrics_sum_every_gunicorn_worker(platform):
    """orders runs two gunicorn workers: every scrape, whichever worker answers, shows the sum."""
    labels = {"view": "health-live", "method": "GET"}
    name = "django_http_requests_total_by_view_transport_method_total"
    before = scrape(platform.url("orders", "/metrics")).value(name, **labels)

    for _ in range(12):
        assert scrape_status(platform.url("orders", "/health/live")) == 200

    readings = {scrape(platform.url("orders", "/metrics")).value(name, **labels) - before for _ in range(6)}
    assert readings == {12}


def scrape_status(url: str) -> int:
    session = requests.Session()
    session.trust_env = False
    return session.get(url, timeout=5).status_code


def test_web_metrics_include_the_state_read_at_scrape_time(platform, worker_metrics_urls):
    for service in platform.services:
        url = platform.url(service, "/metrics")
        # A scrape whose database query fails leaves these gauges out (by design): ask again.
        samples = wait_until(
            lambda url=url: (s := scrape(url)).has("outbox_pending_rows") and s,
            timeout=20,
            message=f"{service}'s outbox gauges",
        )
        assert samples.has("outbox_oldest_pending_age_seconds"), service
        assert samples.has("django_http_responses_total_by_status_view_method_total"), service
        assert samples.has("django_db_execute_total"), service
    orders = scrape(platform.url("orders", "/metrics"))
    assert orders.has("orders_non_terminal", status="pending")
    assert orders.has("orders_non_terminal", status="awaiting_payment")
    assert orders.has("orders_oldest_non_terminal_age_seconds")
    assert orders.value("circuit_breaker_state", downstream="catalog") == 0
    payments = scrape(platform.url("payments", "/metrics"))
    assert payments.has("circuit_breaker_state", downstream="payment_provider")


def test_every_worker_serves_its_task_metrics(platform, worker_metrics_urls):
    for service in platform.services:
        samples = wait_until(
            lambda url=worker_metrics_urls[service]: (s := scrape(url)).has("celery_task_runs_total") and s,
            timeout=20,
            message=f"{service} worker metrics",
        )
        assert samples.value("celery_task_runs_total", task="messaging.relay_outbox", state="succeeded") > 0
        # Database state is read by the web endpoint only, so a service reports it once.
        assert not samples.has("outbox_pending_rows"), service


def test_rabbitmq_reports_every_service_queue_of_the_instance(platform):
    host = urlsplit(platform.broker_url).hostname or "127.0.0.1"
    url = (
        f"http://{host}:{RABBITMQ_METRICS_PORT}/metrics/detailed?vhost={INSTANCE}&family=queue_coarse_metrics"
    )
    samples = scrape(url)
    queues = {labels["queue"] for labels, _ in samples.matching("rabbitmq_detailed_queue_messages_ready")}
    vhosts = {labels["vhost"] for labels, _ in samples.matching("rabbitmq_detailed_queue_messages_ready")}

    assert vhosts == {INSTANCE}
    for service in platform.services:
        assert {f"{service}.events", f"{service}.tasks", f"{service}.dead-letter"} <= queues, service
    assert "domain.unroutable" in queues


# --- manage_all.py: where the metrics are, and the broker plugin ------------------------------------------


@pytest.fixture
def e2e_platform_description(monkeypatch):
    monkeypatch.setenv("PLATFORM_INSTANCE", INSTANCE)
    monkeypatch.setenv("PLATFORM_PORT_OFFSET", str(PORT_OFFSET))
    return instance.load_platform()


def test_up_prints_every_metrics_endpoint(e2e_platform_description, worker_metrics_urls, capsys):
    access.print_access(e2e_platform_description)

    printed = capsys.readouterr().out
    for service in e2e_platform_description.topology.services:
        web = f"http://127.0.0.1:{e2e_platform_description.instance.port(service.port)}/metrics"
        assert f"web {web}   worker {worker_metrics_urls[service.name]}" in printed
    assert f"/metrics/detailed?vhost={INSTANCE}&family=queue_coarse_metrics" in printed


def test_a_broker_without_the_prometheus_plugin_is_explained_not_fatal(
    e2e_platform_description, monkeypatch, capsys
):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("PATH", "/nonexistent")  # no rabbitmq-plugins to enable it with

    provision.ensure_rabbitmq_plugin(
        e2e_platform_description, provision.RABBITMQ_PROMETHEUS_PLUGIN, closed_port, "queue metrics"
    )

    warning = capsys.readouterr().err
    assert f"plugin does not answer on 127.0.0.1:{closed_port}" in warning
    assert "rabbitmq-plugins enable rabbitmq_prometheus" in warning
    assert "rabbitmq-plugins is not available here" in warning

"""The chaos suite's set-up: its own platform instance (tests/conftest.py, with E2E_INSTANCE=chaos from
devtools.suites), products and customers of its own, and the table of what each scenario measured,
printed at the end of the run.

The instance reaches RabbitMQ and the provider sandbox through fault proxies (benchmarks/chaos/proxy.py):
they start before the platform does (pytest_configure), and BROKER_URL and PAYMENT_PROVIDER_URL name
them, so every broker connection and every call to the provider crosses them.
"""

from __future__ import annotations

import dataclasses
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from benchmarks.chaos.engine import Report
from benchmarks.chaos.proxy import FaultProxy
from devtools import instance
from tests.conftest import PORT_OFFSET
from tests.shop import Shop

LINKS: dict[str, FaultProxy] = {}

REPORTS: list[Report] = []
COLUMNS = (
    "fault", "orders", "answers", "post_p50_ms_during_fault", "post_p99_ms_during_fault", "drain_seconds",
    "confirmed", "committed_without_202",
)  # fmt: skip


def pytest_configure(config):
    start_links()


def pytest_unconfigure(config):
    for link in LINKS.values():
        link.stop()


def start_links() -> None:
    broker = urlsplit(os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    LINKS["broker"] = FaultProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
    credentials, _, _address = broker.netloc.rpartition("@")
    proxied = f"127.0.0.1:{LINKS['broker'].listen_port}"
    os.environ["BROKER_URL"] = urlunsplit((broker.scheme, f"{credentials}@{proxied}", broker.path, "", ""))
    provider = instance.load_topology().peer("payment_provider")
    LINKS["provider"] = FaultProxy("127.0.0.1", provider.port + PORT_OFFSET).start()
    os.environ[f"{provider.env_name}_URL"] = f"http://127.0.0.1:{LINKS['provider'].listen_port}"


@pytest.fixture
def links() -> dict[str, FaultProxy]:
    return LINKS


@pytest.fixture(scope="session")
def model(platform) -> instance.Platform:
    """devtools' model of the running chaos instance: its ports, databases, vhost and supervisord."""
    return instance.load_platform(env=platform.env)


@pytest.fixture
def shop(platform) -> Shop:
    """Per scenario: the staff and customer tokens of one outlive no scenario (access tokens are short)."""
    return Shop(platform)


@pytest.fixture
def customers(shop) -> list[str]:
    """Several customers, so that the per-user order limit of the edge (1/s on e2e) never shapes the load."""
    return [shop.new_customer() for _ in range(8)]  # 0.5 orders/s each: under the per-user edge limit


@pytest.fixture
def products(shop) -> list[str]:
    """Fresh products per scenario: conservation is read on stock nothing else touches."""
    return [shop.new_product(stock=30, price=f"{5 + n}.00") for n in range(5)]


@pytest.fixture
def record():
    return REPORTS.append


def pytest_terminal_summary(terminalreporter):
    if not REPORTS:
        return
    terminalreporter.section("chaos: what clients saw during each fault, and the invariants after it")
    for report in REPORTS:
        row = {column: dataclasses.asdict(report)[column] for column in COLUMNS}
        held = "all invariants held" if report.held else f"BROKEN: {report.invariants} {report.problems}"
        terminalreporter.write_line(f"{row} -> {held}")

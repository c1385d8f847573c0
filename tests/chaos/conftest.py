"""The chaos suite's set-up: the e2e instance (tests/conftest.py), products and customers of its own, and
the table of what each scenario measured, printed at the end of the run."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.fault_load import Report
from devtools import instance
from tests.shop import Shop

REPORTS: list[Report] = []
COLUMNS = ("fault", "orders", "answers", "post_p50_ms_during_fault", "post_p99_ms_during_fault", "confirmed")


@pytest.fixture(scope="session")
def model(platform) -> instance.Platform:
    """devtools' model of the running e2e instance: its ports, databases, vhost and supervisord."""
    return instance.load_platform(env=platform.env)


@pytest.fixture(scope="session")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="session")
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

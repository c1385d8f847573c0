"""Fixtures that run the shared package for real: a Celery worker process, broker observers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Queue

from shared.messaging import relay, topology
from shared.testing import BrokerObserver, wait_until
from tests.celery_app import app as celery_app
from tests.test_http import Downstream

SHARED_DIR = Path(__file__).resolve().parents[1]
SERVICE = "shared_tests"


@pytest.fixture(scope="session")
def broker_url() -> str:
    return celery_app.conf.broker_url


@pytest.fixture(scope="session", autouse=True)
def clean_queues(broker_url):
    """Declare this test service's topology and empty its queues of earlier runs' leftovers."""
    with Connection(broker_url) as conn:
        topology.declare(conn, SERVICE, sorted(settings.EVENT_SUBSCRIPTIONS), settings.EVENTS_DELIVERY_LIMIT)
        for name in (f"{SERVICE}.events", f"{SERVICE}.tasks", f"{SERVICE}.dead-letter"):
            Queue(name, channel=conn.default_channel).purge()


@pytest.fixture(autouse=True)
def fresh_fast_path():
    """A test that took the broker away must not leave the fast path backing off for the next one."""
    yield
    relay._broker_down_until = 0.0
    relay._drop_producer()


@pytest.fixture
def observe(broker_url):
    """`observe(["ledger.credited"])` -> a BrokerObserver on domain.events (or `exchange=`)."""
    observers: list[BrokerObserver] = []

    def make(routing_keys, exchange=topology.events_exchange):
        observers.append(BrokerObserver(broker_url, exchange, routing_keys))
        return observers[-1]

    yield make
    for observer in observers:
        observer.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WorkerProcess:
    """`celery worker -B` of the test service, as a child process with its output kept.

    Started as manage_all.py starts workers: through `shared.observability.multiproc` (a wiped multiprocess
    metrics directory) with its metrics served on `metrics_url`.
    """

    def __init__(self, env: dict, schedule: Path, metrics_port: int) -> None:
        self.lines: list[str] = []
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        command = [
            sys.executable, "-m", "shared.observability.multiproc",
            sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-B",
            "--pool", "solo", "--loglevel", "INFO", "--hostname", f"shared-tests-{uuid.uuid4().hex[:8]}@%h",
            "--schedule", str(schedule),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=SHARED_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._collect, daemon=True).start()
        wait_until(lambda: any("ready." in line for line in self.lines), timeout=60, message="worker ready")

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output_contains(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def worker_paused(worker):
    """Freeze the worker (its consumer, so its pool gets nothing new) while a test counts queues or runs a
    sweep of its own that the worker's periodic one must not beat to the rows."""
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real worker consuming `shared_tests.events`, pointed at the test database."""
    db = settings.DATABASES["default"]
    metrics_dir = tmp_path_factory.mktemp("metrics")
    # multiproc (shared.observability) wipes it
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    metrics_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PYTHONUNBUFFERED": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WORKER_METRICS_PORT": str(metrics_port),
    }
    process = WorkerProcess(env, tmp_path_factory.mktemp("beat") / "schedule", metrics_port)
    yield process
    process.stop()


@pytest.fixture
def downstream():
    """A real HTTP server the breaker-wrapped client calls (tests/test_http.py's Downstream)."""
    server = Downstream()
    yield server
    server.close()

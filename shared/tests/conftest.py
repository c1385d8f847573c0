"""Fixtures that run the shared package for real: a Celery worker process, broker observers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from shared.messaging import relay, topology
from tests.celery_app import app as celery_app

SHARED_DIR = Path(__file__).resolve().parents[1]
SERVICE = "shared_tests"


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


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


class Observer:
    """An exclusive queue bound to an exchange: sees copies of what the broker routes there."""

    def __init__(self, conn: Connection, exchange: Exchange, routing_keys: list[str]) -> None:
        self.messages: list = []
        self.queue = Queue(f"observer-{uuid.uuid4()}", exclusive=True, auto_delete=True)
        channel = conn.channel()
        bound = self.queue(channel)
        bound.declare()
        for key in routing_keys:
            bound.bind_to(exchange=exchange.name, routing_key=key)
        self.consumer = conn.Consumer(bound, callbacks=[self._on_message], accept=["json"])
        self.consumer.consume()
        self.conn = conn

    def _on_message(self, body, message) -> None:
        self.messages.append((message.headers, body))
        message.ack()

    def event_ids(self) -> list[str]:
        return [body[0][0]["id"] for _headers, body in self.messages]

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, OSError):
                self.conn.drain_events(timeout=0.05)

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            self.drain(0.1)
        return self.event_ids()


@pytest.fixture
def observe(broker_url):
    """`observe(["ledger.credited"])` -> an Observer on domain.events (or `exchange=`)."""
    connections = []

    def make(routing_keys, exchange=topology.events_exchange):
        conn = Connection(broker_url)
        conn.connect()
        connections.append(conn)
        return Observer(conn, exchange, routing_keys)

    yield make
    for conn in connections:
        with contextlib.suppress(Exception):
            conn.close()


class WorkerProcess:
    """`celery worker -B` of the test service, as a child process with its output kept."""

    def __init__(self, env: dict, schedule: Path) -> None:
        self.lines: list[str] = []
        command = [
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


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real worker consuming `shared_tests.events`, pointed at the test database."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PYTHONUNBUFFERED": "1",
    }
    process = WorkerProcess(env, tmp_path_factory.mktemp("beat") / "schedule")
    yield process
    process.stop()

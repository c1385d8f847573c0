"""Orders at a steady rate through the gateway, one real fault in the middle, then the invariants read from
the services' databases. Prints one JSON line: what clients saw during the fault and whether every
invariant held once the platform was quiet again.

    .venv/bin/python benchmarks/fault_load.py --fault redis-pause
    .venv/bin/python benchmarks/fault_load.py --fault broker-stop --rate 6 --duration 40

Faults: none, redis-pause (CLIENT PAUSE ALL: Redis hangs), broker-stop (rabbitmqctl stop_app, then
start_app), postgres-restart, kill-workers (SIGKILL every Celery worker of the instance), kill-orders-web
(SIGKILL orders' web server), bad-messages (what a worker cannot run, on every service's queue). The
chaos suite (tests/chaos) runs the same engine (`run_scenario`) on its own instance. Redis, RabbitMQ
and Postgres are this machine's own, shared by every instance on it: run one fault at a time, with no
other platform under load. The figures and what they proved are in docs/reliability.md.

Invariants, from each service's database: every accepted order terminal; per product, on_hand +
reserved + sold unchanged and nothing left reserved; a confirmed order has one captured payment of its
total, any other order none; no outbox row left unpublished in any service; nothing parked in a
dead-letter queue but the bad messages the scenario sent (each of those parked, none lost).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import kombu
import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import instance, supervisor  # noqa: E402

SHIPPING = {"line1": "1 Fault Street", "city": "Chaos", "postal_code": "00000", "country": "US"}
CARDS = ["tok_visa"] * 4 + ["tok_chargeDeclined"]  # one in five declined: compensations run too
TERMINAL = ("confirmed", "rejected", "cancelled")
QUIET_TIMEOUT = 180.0
DEAD_LETTER_TIMEOUT = 30.0


FAULTS = (
    "none",
    "redis-pause",
    "broker-stop",
    "postgres-restart",
    "kill-workers",
    "kill-orders-web",
    "bad-messages",
)
# What a worker cannot run, sent to every service's events queue by the bad-messages fault.
BAD_MESSAGES = {
    "malformed-json": (b'{"not": json', "application/json", "utf-8", {"task": "events.deliver"}),
    "wrong-encoding": (b"\xff\xfe[]", "application/json", "utf-8", {"task": "events.deliver"}),
    "pickle": (b"\x80\x04K\x01.", "application/x-python-serialize", "binary", {"task": "events.deliver"}),
    "unknown-task": (b"[[], {}, {}]", "application/json", "utf-8", {"task": "nobody.knows_this"}),
    "not-a-task": (b'"just a string"', "application/json", "utf-8", {}),
}


@dataclass(frozen=True)
class Scenario:
    fault: str
    rate: float = 6.0  # orders per second, open loop
    duration: float = 40.0  # seconds of load
    fault_at: float = 10.0  # seconds into the load
    fault_seconds: float = 15.0


@dataclass
class Report:
    """What clients saw during the fault, and the invariants once the platform was quiet again."""

    fault: str
    orders: int
    answers: dict[str, int]
    post_p50_ms_during_fault: int
    post_p99_ms_during_fault: int
    post_p99_ms_whole_run: int
    confirmed: int
    retry_after_of_503s: list[str]
    invariants: dict[str, bool]
    problems: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return all(self.invariants.values())


class Run:
    def __init__(self, platform: instance.Platform) -> None:
        self.platform = platform
        self.gateway = f"http://127.0.0.1:{platform.instance.port(platform.topology.gateway.port)}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        # (sent at, seconds, status, order id, Retry-After)
        self.results: list[tuple[float, float, int | str, str, str | None]] = []
        self.lock = threading.Lock()

    def database(self, service: str) -> psycopg.Connection:
        endpoints = self.platform.endpoints
        return psycopg.connect(
            host=endpoints.postgres_host, port=endpoints.postgres_port, user="root",
            dbname=self.platform.instance.database(service), autocommit=True,
        )  # fmt: skip

    def login(self) -> str:
        answer = self.http.post(
            f"{self.gateway}/api/v1/auth/token/",
            json={"email": "customer@example.com", "password": "customer-demo-pass-1"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access"]

    def products(self, token: str, count: int) -> list[str]:
        answer = self.http.get(
            f"{self.gateway}/api/v1/products/?page_size={count}",
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
        return [product["id"] for product in answer.json()["results"]]

    def place(self, index: int, tokens: list[str], products: list[str], started: float) -> None:
        body = {
            "items": [{"product_id": products[index % len(products)], "quantity": 1}],
            "payment_token": CARDS[index % len(CARDS)],
            "shipping_address": SHIPPING,
        }
        token = tokens[index % len(tokens)]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        sent = time.monotonic()
        retry_after = None
        try:
            answer = self.http.post(f"{self.gateway}/api/v1/orders/", json=body, headers=headers, timeout=60)
            status, order_id = answer.status_code, answer.json().get("id", "") if answer.ok else ""
            retry_after = answer.headers.get("Retry-After")
        except requests.RequestException as exc:
            status, order_id = type(exc).__name__, ""
        with self.lock:
            self.results.append((sent - started, time.monotonic() - sent, status, order_id, retry_after))


def inject(fault: str, seconds: float, platform: instance.Platform) -> None:
    if fault == "redis-pause":
        subprocess.run(["redis-cli", "CLIENT", "PAUSE", str(int(seconds * 1000)), "ALL"], check=True)
    elif fault == "broker-stop":
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
        time.sleep(seconds)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)
    elif fault == "postgres-restart":
        (version,) = (path.name for path in Path("/etc/postgresql").iterdir())  # Debian's one cluster
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    elif fault in ("kill-workers", "kill-orders-web"):
        wanted = "-worker" if fault == "kill-workers" else "orders-web"
        for name, (state, pid) in supervisor.Supervisor(platform.instance).processes().items():
            if wanted in name and state == "RUNNING" and pid:
                os.kill(pid, signal.SIGKILL)
    elif fault == "bad-messages":
        publish_bad_messages(platform)


def publish_bad_messages(platform: instance.Platform) -> None:
    with kombu.Connection(platform.instance.broker_url) as connection:
        producer = connection.Producer()
        for service in platform.topology.service_names:
            for kind, (body, content_type, encoding, headers) in BAD_MESSAGES.items():
                message_id = f"bad-{kind}-{service}"
                producer.publish(
                    body, exchange="", routing_key=f"{service}.events", content_type=content_type,
                    content_encoding=encoding, headers={"id": message_id, **headers}, message_id=message_id,
                )  # fmt: skip


def take_dead_letters(platform: instance.Platform) -> dict[str, list[str]]:
    """Every message parked in each service's dead-letter queue (removed): service -> message ids."""
    parked: dict[str, list[str]] = {}
    with kombu.Connection(platform.instance.broker_url) as connection:
        for service in platform.topology.service_names:
            queue = kombu.Queue(f"{service}.dead-letter", channel=connection.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                headers = message.headers or {}
                parked.setdefault(service, []).append(
                    str(headers.get("id") or message.properties.get("message_id"))
                )
    return parked


def stock_totals(run: Run, products: list[str]) -> dict[str, tuple[int, int]]:
    with run.database("inventory") as db:
        rows = db.execute(
            "SELECT product_id::text, on_hand + reserved + sold, reserved FROM inventory_stock "
            "WHERE product_id::text = ANY(%s)",
            [products],
        ).fetchall()
    return {product: (total, reserved) for product, total, reserved in rows}


def pending_outbox(run: Run) -> dict[str, int]:
    pending = {}
    for service in run.platform.topology.service_names:
        with run.database(service) as db:
            count = db.execute("SELECT count(*) FROM messaging_outboxevent WHERE published_at IS NULL")
            pending[service] = count.fetchone()[0]
    return pending


def queued_messages(platform: instance.Platform) -> int:
    """Messages waiting in the services' event and task queues (ready, not yet delivered to a worker)."""
    waiting = 0
    with kombu.Connection(platform.instance.broker_url) as connection:
        channel = connection.default_channel
        for service in platform.topology.service_names:
            for queue in (f"{service}.events", f"{service}.tasks"):
                waiting += channel.queue_declare(queue=queue, passive=True).message_count
    return waiting


def wait_for_quiet(run: Run, order_ids: list[str]) -> dict[str, str]:
    """Every accepted order's status once all are terminal, no outbox row waits and every service's
    queues are drained (a slow consumer, e-mails, may still be working through the load), or at the
    timeout."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    while True:
        with run.database("orders") as db:
            statuses = dict(db.execute(
                "SELECT id::text, status FROM orders_order WHERE id::text = ANY(%s)", [order_ids]
            ).fetchall())  # fmt: skip
        settled = all(statuses.get(order_id) in TERMINAL for order_id in order_ids)
        quiet = settled and not any(pending_outbox(run).values()) and not queued_messages(run.platform)
        if quiet or time.monotonic() > deadline:
            return statuses
        time.sleep(1)


def payment_problems(run: Run, order_ids: list[str]) -> list[str]:
    with run.database("orders") as db:
        orders = {
            order_id: (status, total)
            for order_id, status, total in db.execute(
                "SELECT id::text, status, total FROM orders_order WHERE id::text = ANY(%s)", [order_ids]
            ).fetchall()
        }
    with run.database("payments") as db:
        captured: dict[str, list] = {}
        for order_id, amount in db.execute(
            "SELECT order_id::text, amount FROM payments_payment WHERE status = 'captured' "
            "AND order_id::text = ANY(%s)",
            [order_ids],
        ).fetchall():
            captured.setdefault(order_id, []).append(amount)
    problems = []
    for order_id, (status, total) in orders.items():
        amounts = captured.get(order_id, [])
        if status == "confirmed" and amounts != [total]:
            problems.append(f"{order_id} confirmed with captured {amounts}, total {total}")
        if status != "confirmed" and amounts:
            problems.append(f"{order_id} {status} but captured {amounts}")
    return problems


def percentile_ms(values: list[float], fraction: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000)


def collect_dead_letters(platform: instance.Platform, expected: dict[str, list[str]]) -> dict[str, list[str]]:
    """What the dead-letter queues hold (taken out), waiting up to DEAD_LETTER_TIMEOUT for the expected."""
    parked: dict[str, list[str]] = {service: [] for service in expected}
    deadline = time.monotonic() + DEAD_LETTER_TIMEOUT
    while True:
        for service, ids in take_dead_letters(platform).items():
            parked[service] = sorted(parked.get(service, []) + ids)
        if all(set(ids) <= set(parked[service]) for service, ids in expected.items()):
            return parked
        if time.monotonic() > deadline:
            return parked
        time.sleep(0.5)


def run_scenario(
    platform: instance.Platform, scenario: Scenario, tokens: list[str], products: list[str]
) -> Report:
    """Load, fault, heal, wait for quiet, then read the invariants from the databases."""
    run = Run(platform)
    before = stock_totals(run, products)
    take_dead_letters(platform)  # what earlier runs left is not this run's
    started = time.monotonic()
    threading.Timer(scenario.fault_at, inject, (scenario.fault, scenario.fault_seconds, platform)).start()
    with ThreadPoolExecutor(64) as pool:
        index = 0
        while time.monotonic() - started < scenario.duration:
            pool.submit(run.place, index, tokens, products, started)
            index += 1
            time.sleep(max(0.0, index / scenario.rate - (time.monotonic() - started)))

    accepted = [order_id for _at, _s, status, order_id, _ra in run.results if status == 202]
    statuses = wait_for_quiet(run, accepted)
    after = stock_totals(run, products)
    fault_ends = scenario.fault_at + scenario.fault_seconds
    during = [s for at, s, _status, _id, _ra in run.results if scenario.fault_at <= at < fault_ends]
    answers: dict[str, int] = {}
    for _at, _s, status, _id, _ra in run.results:
        answers[str(status)] = answers.get(str(status), 0) + 1
    payments = payment_problems(run, accepted)
    sent_bad = scenario.fault == "bad-messages"
    expected = {
        service: sorted(f"bad-{kind}-{service}" for kind in BAD_MESSAGES) if sent_bad else []
        for service in platform.topology.service_names
    }
    parked = collect_dead_letters(platform, expected)
    parked_as_expected = parked == expected
    invariants = {
        "accepted orders terminal": all(statuses.get(order_id) in TERMINAL for order_id in accepted),
        "stock conserved, none reserved": all(
            after[p][0] == before[p][0] and after[p][1] == 0 for p in products if p in before
        ),
        "one captured payment per confirmed order": not payments,
        "no outbox row pending": not any(pending_outbox(run).values()),
        "dead letters as expected": parked_as_expected,
    }
    return Report(
        fault=scenario.fault,
        orders=len(run.results),
        answers=answers,
        post_p50_ms_during_fault=percentile_ms(during, 0.5),
        post_p99_ms_during_fault=percentile_ms(during, 0.99),
        post_p99_ms_whole_run=percentile_ms([s for _at, s, _st, _id, _ra in run.results], 0.99),
        confirmed=sum(status == "confirmed" for status in statuses.values()),
        retry_after_of_503s=sorted({str(ra) for _a, _s, st, _i, ra in run.results if st == 503}),
        invariants=invariants,
        problems=payments[:5] + ([] if parked_as_expected else [f"dead letters: {parked}"]),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", required=True, choices=FAULTS)
    parser.add_argument("--rate", type=float, default=6.0, help="orders per second (open loop)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    parser.add_argument("--fault-at", type=float, default=10.0, help="seconds into the load")
    parser.add_argument("--fault-seconds", type=float, default=15.0, help="how long the fault lasts")
    parser.add_argument("--products", type=int, default=20)
    args = parser.parse_args()

    platform = instance.load_platform()
    run = Run(platform)
    token = run.login()
    scenario = Scenario(args.fault, args.rate, args.duration, args.fault_at, args.fault_seconds)
    report = run_scenario(platform, scenario, [token], run.products(token, args.products))
    print(json.dumps(dataclasses.asdict(report)))
    return 0 if report.held else 1


if __name__ == "__main__":
    sys.exit(main())

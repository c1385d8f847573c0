"""The CPU floor of the saga on this machine: messaging and handler bookkeeping, before business code.

    python3 manage_all.py up      # the services' databases must exist; the platform may then idle
    .venv/bin/python benchmarks/celery_floor.py --messages 2000

Uses RabbitMQ the way the platform does (a durable quorum queue, persistent messages, publisher
confirms; Celery with acks_late, prefetch 1, JSON, task events off) and measures CPU seconds per
message from /proc:

- a confirmed publish: the publisher's CPU and RabbitMQ's;
- a no-op Celery task executed by a worker, for the prefork pool (the platform's) and the threads
  pool: the worker's CPU (main process and pool) and RabbitMQ's for delivering and acknowledging it;
- the inbox and outbox bookkeeping through Django's ORM (benchmarks/orm_floor.py, run in inventory's
  environment): a transaction with a handler's inbox row; an outbox row written, claimed by the relay
  and marked published. Django's CPU and Postgres's.

It then multiplies by what one order of the happy path costs (the *_PER_ORDER counts below) and
prints the most orders/s the machine's cores could confirm if the services' business code, their
HTTP requests and the load generator cost nothing. Run it with the platform idle: RabbitMQ's CPU is
read for the whole broker, and its idle rate, measured first, is subtracted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from celery import Celery
from kombu import Connection, Queue

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import proc_cpu  # noqa: E402

BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# One queue per run, named by the benchmark and handed to its worker in the environment.
QUEUE_NAME = os.environ.setdefault("FLOOR_QUEUE", f"bench.floor.{uuid.uuid4().hex[:8]}")
COUNTER_KEY = f"{QUEUE_NAME}:done"

# One confirmed order on the happy path (design section 3): events order.created, inventory.reserved,
# payment.succeeded and order.confirmed, plus the local tasks payments.payment_charge and
# notifications.notification_send, are 6 confirmed publishes; their consumers run 1 + 2 + 2 + 3 event
# tasks and the 2 local tasks: 10 task executions.
# The 8 event deliveries each keep an inbox row; the 4 events each go through the outbox.
PUBLISHES_PER_ORDER = 6
TASKS_PER_ORDER = 10
INBOX_ROWS_PER_ORDER = 8
OUTBOX_ROWS_PER_ORDER = 4


def quorum_queue(name: str) -> Queue:
    return Queue(name, routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"})


app = Celery("floor", broker=BROKER_URL)
app.conf.update(
    broker_transport_options={"confirm_publish": True},
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_send_task_events=False,
    task_queues=[quorum_queue(QUEUE_NAME)],
    task_default_queue=QUEUE_NAME,
    task_create_missing_queues=False,
    worker_hijack_root_logger=False,
)
_counter = redis.Redis.from_url(REDIS_URL)


@app.task(name="bench.floor.noop")
def noop(index: int) -> None:
    """Does nothing but count itself (one Redis INCR, ~0.05 ms), so the benchmark knows when all ran."""
    _counter.incr(COUNTER_KEY)


def rabbitmq_idle_rate(seconds: float = 3.0) -> float:
    before = proc_cpu.snapshot()
    time.sleep(seconds)
    return proc_cpu.spent(before, proc_cpu.snapshot(), proc_cpu.rabbitmq_label).get("rabbitmq", 0.0) / seconds


def measure_publishes(messages: int, idle_rate: float) -> dict:
    """Persistent messages to the quorum queue, one confirm awaited per publish, as the relay does."""
    with Connection(BROKER_URL, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        queue = quorum_queue(QUEUE_NAME)(connection.default_channel)
        queue.declare()
        before, cpu_before, started = proc_cpu.snapshot(), time.process_time(), time.monotonic()
        for index in range(messages):
            producer.publish({"index": index}, exchange="", routing_key=QUEUE_NAME, delivery_mode=2)
        wall = time.monotonic() - started
        publisher = time.process_time() - cpu_before
        broker = proc_cpu.spent(before, proc_cpu.snapshot(), proc_cpu.rabbitmq_label).get("rabbitmq", 0.0)
        queue.purge()
    return {"wall": wall, "publisher": publisher, "rabbitmq": max(0.0, broker - idle_rate * wall)}


def measure_tasks(messages: int, pool: str, concurrency: int, idle_rate: float) -> dict:
    """A worker on the queue; tasks sent first (not counted), then its CPU while it runs them all."""
    _counter.delete(COUNTER_KEY)
    for index in range(messages):
        noop.apply_async((index,), queue=QUEUE_NAME)
    # The worker's banner and warnings would bury the figures: they go to a file (not a pipe nobody
    # drains while it runs), shown if the worker dies.
    with tempfile.TemporaryFile() as errors:
        worker = _start_worker(pool, concurrency, errors)

        def done() -> int:
            if worker.poll() is not None:
                errors.seek(0)
                raise RuntimeError(f"the {pool} worker exited: {errors.read().decode()[-2000:]}")
            return int(_counter.get(COUNTER_KEY) or 0)

        try:
            # Startup (imports, forking the pool) is not the cost of a task: wait for the first task.
            while done() == 0:
                time.sleep(0.01)
            before, started = proc_cpu.snapshot(), time.monotonic()
            counted_from = done()
            while done() < messages:
                time.sleep(0.01)
            wall = time.monotonic() - started
            after = proc_cpu.snapshot()
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    def label(command: str) -> str | None:
        if f"floor-{pool}@" in command:
            return "worker"
        return proc_cpu.rabbitmq_label(command)

    spent = proc_cpu.spent(before, after, label)
    return {
        "tasks": messages - counted_from,
        "wall": wall,
        "worker": spent.get("worker", 0.0),
        "rabbitmq": max(0.0, spent.get("rabbitmq", 0.0) - idle_rate * wall),
    }


def _start_worker(pool: str, concurrency: int, errors) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "celery", "-A", "benchmarks.celery_floor", "worker",
        "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname", f"floor-{pool}@%h",
    ]  # fmt: skip
    env = {**os.environ, "FLOOR_QUEUE": QUEUE_NAME, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)


def measure_bookkeeping() -> dict:
    """benchmarks/orm_floor.py in inventory's Django environment, through manage_all.py."""
    code = "from benchmarks import orm_floor; orm_floor.main()"
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "manage", "inventory", "shell", "-c", code],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def per_message_ms(result: dict, key: str, count: int) -> float:
    return 1000 * result[key] / count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    arguments = parser.parse_args()
    count = arguments.messages
    idle = rabbitmq_idle_rate()
    print(f"RabbitMQ idle: {1000 * idle:.1f} ms CPU per second (subtracted below)")
    try:
        publish = measure_publishes(count, idle)
        publish_ms = per_message_ms(publish, "publisher", count) + per_message_ms(publish, "rabbitmq", count)
        print(
            f"confirmed publish   {count} in {publish['wall']:.1f} s ({count / publish['wall']:.0f}/s): "
            f"publisher {per_message_ms(publish, 'publisher', count):.2f} ms + "
            f"RabbitMQ {per_message_ms(publish, 'rabbitmq', count):.2f} ms CPU each"
        )
        floors = {}
        for pool, concurrency in (("prefork", 1), ("threads", 1)):
            run = measure_tasks(count, pool, concurrency, idle)
            tasks = run["tasks"]
            worker_ms = per_message_ms(run, "worker", tasks)
            broker_ms = per_message_ms(run, "rabbitmq", tasks)
            floors[pool] = worker_ms + broker_ms
            print(
                f"no-op task, {pool:<8} {tasks} in {run['wall']:.1f} s ({tasks / run['wall']:.0f}/s): "
                f"worker {worker_ms:.2f} ms + RabbitMQ {broker_ms:.2f} ms CPU each"
            )
    finally:
        with Connection(BROKER_URL) as connection:
            quorum_queue(QUEUE_NAME)(connection.default_channel).delete()
        _counter.delete(COUNTER_KEY)

    orm = measure_bookkeeping()
    bookkeeping_ms = 0.0
    for kind, per_order in (("inbox", INBOX_ROWS_PER_ORDER), ("outbox", OUTBOX_ROWS_PER_ORDER)):
        run = orm[kind]
        django_ms, postgres_ms = (per_message_ms(run, key, run["rounds"]) for key in ("django", "postgres"))
        bookkeeping_ms += per_order * (django_ms + postgres_ms)
        print(
            f"{kind + ' round':<19} {run['rounds']} in {run['wall']:.1f} s: "
            f"Django {django_ms:.2f} ms + Postgres {postgres_ms:.2f} ms CPU each"
        )

    print(
        f"per order ({PUBLISHES_PER_ORDER} confirmed publishes, {TASKS_PER_ORDER} task executions, "
        f"{INBOX_ROWS_PER_ORDER} inbox rows, {OUTBOX_ROWS_PER_ORDER} outbox rows):"
    )
    for pool, task_ms in floors.items():
        messaging_ms = PUBLISHES_PER_ORDER * publish_ms + TASKS_PER_ORDER * task_ms
        order_ms = messaging_ms + bookkeeping_ms
        ceiling = arguments.cores * 1000 / order_ms
        print(
            f"  {pool:<8} messaging {messaging_ms:.1f} ms + bookkeeping {bookkeeping_ms:.1f} ms "
            f"= {order_ms:.1f} ms CPU -> at most {ceiling:.0f} orders/s on {arguments.cores} cores, "
            "before any business code or HTTP request"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The faults: the platform's processes hit by pid, the infrastructure through its own control tools.

Redis, RabbitMQ and Postgres are this machine's own, shared by every instance on it: one fault at a
time, with no other platform under load. Each fault heals itself before `inject` returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import kombu
import psycopg
import redis
from celery import Celery
from psycopg.types.json import Jsonb

from devtools import instance, supervisor

DELIVER_TASK = "events.deliver"  # shared.messaging's task names: wire contracts
RELAY_TASK = "messaging.relay_outbox"
# One per kind of fault: the chaos suite's core set, in CI.
CORE_FAULTS = (
    "none",
    "redis-pause",
    "broker-stop",
    "postgres-restart",
    "kill-workers",
    "kill-orders-web",
    "bad-messages",
    "redeliver",
    "broker-link",
)
# The rest of the full set (`manage_all.py test chaos --full`): heavier versions of the same kinds, and
# the slow ones.
EXTRA_FAULTS = (
    "redis-stop", "broker-restart", "kill-webs", "kill-orders-web-thrice", "kill-orders-web-after-commit",
    "long-transaction", "consumer-timeout", "provider-link",
)  # fmt: skip
# These need the platform wired through fault proxies (tests/chaos does it).
LINK_FAULTS = ("broker-link", "provider-link", "kill-orders-web-after-commit")
FAULTS = CORE_FAULTS + EXTRA_FAULTS
# RabbitMQ evaluates consumer timeouts once a minute: a delivery must be held longer than that to see one.
CONSUMER_TIMEOUT_MS = 5000
CONSUMER_TIMEOUT_HOLD_SECONDS = 75.0
HELD_EVENT_TYPE = "chaos.held"  # no service subscribes: the relay's publish lands in domain.unroutable

# What a worker cannot run, sent straight to every service's events queue by the bad-messages fault:
# (body, content type, encoding, headers beyond the id).
BAD_MESSAGES = {
    "malformed-json": (b'{"not": json', "application/json", "utf-8", {"task": DELIVER_TASK}),
    "wrong-encoding": (b"\xff\xfe[]", "application/json", "utf-8", {"task": DELIVER_TASK}),
    "pickle": (b"\x80\x04K\x01.", "application/x-python-serialize", "binary", {"task": DELIVER_TASK}),
    "unknown-task": (b"[[], {}, {}]", "application/json", "utf-8", {"task": "nobody.knows_this"}),
    "not-a-task": (b'"just a string"', "application/json", "utf-8", {}),
}
# Well-formed task messages whose event no handler can read, sent to the services that consume events.
BAD_EVENTS = {
    "unknown-version": {"version": 99},
    "missing-fields": {"data": None},
}
_task_messages = Celery(set_as_current=False)


def inject(fault: str, seconds: float, platform: instance.Platform, links: dict | None = None) -> dict:
    """Cause `fault` for about `seconds`, heal it, and return what the checks need to know about it.
    `links` are the fault proxies the platform reaches the broker and the provider through, if any."""
    if fault in ("broker-link", "provider-link"):
        disturb_link((links or {})[fault.removesuffix("-link")], seconds)
    elif fault == "kill-orders-web-after-commit":
        kill_after_commit(platform, (links or {})["broker"], seconds)
    elif fault == "redis-pause":
        redis.Redis.from_url(platform.instance.redis_url).client_pause(int(seconds * 1000), all=True)
    elif fault == "redis-stop":
        stop_redis(platform, seconds)
    elif fault == "broker-stop":
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
        time.sleep(seconds)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)
    elif fault == "broker-restart":
        restart_broker_node(seconds)
    elif fault == "postgres-restart":
        restart_postgres()
    elif fault in ("kill-workers", "kill-orders-web", "kill-webs"):
        wanted = {"kill-workers": "-worker", "kill-orders-web": "orders-web", "kill-webs": "-web"}[fault]
        for pid in pids(platform, wanted):
            os.kill(pid, signal.SIGKILL)
    elif fault == "kill-orders-web-thrice":
        return {"kills": kill_repeatedly(platform, "orders-web", seconds, times=3)}
    elif fault == "long-transaction":
        return {"held event": hold_a_transaction_while_relays_race(platform, seconds)}
    elif fault == "consumer-timeout":
        timeouts = hold_deliveries_past_the_consumer_timeout(platform, "payments-worker")
        return {"deliveries timed out by the broker": timeouts}
    elif fault == "bad-messages":
        return {"bad messages": publish_bad_messages(platform)}
    elif fault == "redeliver":
        return {"redelivered": redeliver_held_events(platform, seconds)}
    elif fault != "none":
        raise ValueError(f"unknown fault {fault!r}")
    return {}


def pids(platform: instance.Platform, name_part: str) -> list[int]:
    processes = supervisor.Supervisor(platform.instance).processes()
    return [
        pid for name, (state, pid) in processes.items() if name_part in name and state == "RUNNING" and pid
    ]


def with_children(pid: int) -> list[int]:
    """A process and its children (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid:  # after the command name: state, then the parent's pid
                children.append(int(stat.parent.name))
    return [pid, *children]


def subscriptions(platform: instance.Platform) -> dict[str, set[str]]:
    """Each service's subscribed event types, as the broker routes them (`domain.events` bindings)."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_bindings", "-p", platform.instance.broker_vhost,
         "source_name", "destination_name", "routing_key", "--formatter", "json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    bound: dict[str, set[str]] = {service: set() for service in platform.topology.service_names}
    for binding in json.loads(listing.stdout):
        service, _, kind = binding["destination_name"].rpartition(".")
        key = binding["routing_key"]
        if binding["source_name"] != "domain.events" or kind != "events" or service not in bound:
            continue
        if "#" not in key:  # Celery's native delayed delivery adds a `#.<key>` twin of every binding
            bound[service].add(key)
    return bound


# Bad messages


def publish_bad_messages(platform: instance.Platform) -> dict[str, list[str]]:
    """Send every kind of bad message to every service's events queue; returns service -> message ids."""
    sent: dict[str, list[str]] = {}
    consumed = subscriptions(platform)
    with kombu.Connection(platform.instance.broker_url) as connection:
        producer = connection.Producer()
        for service in platform.topology.service_names:
            queue = f"{service}.events"
            for kind, (body, content_type, encoding, headers) in BAD_MESSAGES.items():
                message_id = f"bad-{kind}-{service}"
                producer.publish(
                    body, exchange="", routing_key=queue, content_type=content_type,
                    content_encoding=encoding, headers={"id": message_id, **headers}, message_id=message_id,
                )  # fmt: skip
                sent.setdefault(service, []).append(message_id)
            for kind, changes in BAD_EVENTS.items():
                if not consumed[service]:
                    continue  # an event for a service with no handler is ignored, whatever it holds
                message_id = f"bad-{kind}-{service}"
                envelope = _envelope(sorted(consumed[service])[0], changes)
                publish_task_message(producer, queue, message_id, envelope)
                sent[service].append(message_id)
    return {service: sorted(ids) for service, ids in sent.items()}


def _envelope(event_type: str, changes: dict) -> dict:
    event_id = str(uuid.uuid4())
    envelope = {
        "id": event_id, "type": event_type, "version": 1, "occurred_at": datetime.now(UTC).isoformat(),
        "source": "chaos", "correlation_id": event_id, "causation_id": None, "data": {},
    }  # fmt: skip
    envelope.update(changes)
    return {name: value for name, value in envelope.items() if value is not None or name == "causation_id"}


def publish_task_message(producer, queue: str, message_id: str, envelope: dict) -> None:
    """An `events.deliver` task message, exactly as the relay builds it (Celery's protocol 2)."""
    message = _task_messages.amqp.as_task_v2(message_id, DELIVER_TASK, args=(envelope,), kwargs={})
    producer.publish(
        message.body, exchange="", routing_key=queue, headers=message.headers, serializer="json",
        delivery_mode=2, **message.properties,
    )  # fmt: skip


# Every saga event three times, out of order


def redeliver_held_events(platform: instance.Platform, seconds: float) -> int:
    """Hold every worker for `seconds` while events pile up in their queues, then put each held message
    back three times in reverse order: first deliveries out of order (e.g. a payment's outcome before the
    reservation it follows), and two duplicates of each, all through the real broker. Returns how many
    messages were held."""
    workers = pids(platform, "-worker")
    held = 0
    with stopped(workers):
        time.sleep(seconds)
        with kombu.Connection(platform.instance.broker_url) as connection:
            producer = connection.Producer(channel=connection.channel())
            for service in platform.topology.service_names:
                held += _reverse_and_triple(connection, producer, f"{service}.events")
    return held


def _reverse_and_triple(connection: kombu.Connection, producer, queue_name: str) -> int:
    queue = kombu.Queue(queue_name, channel=connection.default_channel)
    taken = []
    while (message := queue.get(no_ack=False)) is not None:
        taken.append(message)
    copies = [message for message in reversed(taken) for _ in range(3)]
    tail = copies[len(copies) // 2 :]
    random.Random(queue_name).shuffle(tail)  # noqa: S311 (an order of messages, not a secret)
    copies[len(copies) // 2 :] = tail  # the second half in no order at all
    for message in copies:
        producer.publish(
            message.body, exchange="", routing_key=queue_name, headers=message.headers,
            content_type=message.content_type, content_encoding=message.content_encoding,
            delivery_mode=2, correlation_id=message.properties.get("correlation_id"),
        )  # fmt: skip
    for message in taken:
        message.ack()  # only once the copies are in the queue: a crash here duplicates, never loses
    return len(taken)


@contextmanager
def stopped(pids_to_stop: list[int]):
    for pid in pids_to_stop:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids_to_stop:
            os.kill(pid, signal.SIGCONT)


# Processes killed mid-request, transactions held open, deliveries held past the consumer timeout


def kill_repeatedly(platform: instance.Platform, program: str, seconds: float, *, times: int) -> int:
    """SIGKILL a program `times` over `seconds`, each time once supervisord has it RUNNING again: under
    load, some kill lands between a request's commit and its answer."""
    kills = 0
    for round_ in range(times):
        _wait(lambda: pids(platform, program), 30, f"{program} did not come back")
        for pid in pids(platform, program):
            os.kill(pid, signal.SIGKILL)
            kills += 1
        time.sleep(seconds / times if round_ < times - 1 else 0)
    return kills


def kill_after_commit(platform: instance.Platform, broker_link, seconds: float) -> None:
    """Stall the broker link so that orders' web requests wait in the outbox fast path, after their
    commit and before their answer, then SIGKILL the web server under them; heal."""
    broker_link.stall()
    try:
        time.sleep(0.3)  # within the fast path's confirm timeout: requests are waiting on it now
        # The master and its workers at once: a worker outlives its killed master for about a second
        # and would still answer the requests it holds.
        for pid in [child for master in pids(platform, "orders-web") for child in with_children(master)]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(max(0.0, seconds - 0.3))
    finally:
        broker_link.heal()


def hold_a_transaction_while_relays_race(platform: instance.Platform, seconds: float) -> str:
    """Open a business transaction in orders that records an event and stays open for `seconds`, while
    later orders commit and extra relay sweeps run beside the fast path and beat's: a relay that kept a
    high-water mark would skip the late row. Returns the held event's id."""
    event_id = str(uuid.uuid4())
    envelope = _envelope(HELD_EVENT_TYPE, {"data": {"held_seconds": seconds}}) | {"id": event_id}
    endpoints = platform.endpoints
    with psycopg.connect(
        host=endpoints.postgres_host, port=endpoints.postgres_port, user="root",
        dbname=platform.instance.database("orders"),
    ) as db:  # fmt: skip
        db.execute(
            "INSERT INTO messaging_outboxevent (id, event_type, version, envelope, created_at, attempts, "
            "last_error, correlation_id) VALUES (%s, %s, 1, %s, now(), 0, '', %s)",
            [event_id, HELD_EVENT_TYPE, Jsonb(envelope), event_id],
        )
        deadline = time.monotonic() + seconds
        with kombu.Connection(platform.instance.broker_url) as connection:
            producer = connection.Producer()
            while time.monotonic() < deadline:
                for service in platform.topology.service_names:
                    sweep = _task_messages.amqp.as_task_v2(str(uuid.uuid4()), RELAY_TASK, args=(), kwargs={})
                    producer.publish(
                        sweep.body, exchange="", routing_key=f"{service}.tasks", headers=sweep.headers,
                        serializer="json", **sweep.properties,
                    )  # fmt: skip
                time.sleep(0.25)
        db.commit()
    return event_id


def hold_deliveries_past_the_consumer_timeout(platform: instance.Platform, program: str) -> int:
    """Lower RabbitMQ's node-wide consumer timeout, restart `program` so that its channels take it, stop
    the worker mid-work until the broker gives up on its unacknowledged deliveries (they go back to the
    queue), let it go on, then restore the timeout and restart the worker again. Returns how many times
    the worker was told its channel had timed out (from its JSON log)."""
    control = supervisor.Supervisor(platform.instance)
    log = platform.instance.log_dir / f"{program}.log"
    previous = _rabbit_eval("application:get_env(rabbit, consumer_timeout).")
    _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {CONSUMER_TIMEOUT_MS}).")
    try:
        control.restart(program)
        log_start = log.stat().st_size
        with stopped(pids(platform, program)):
            time.sleep(CONSUMER_TIMEOUT_HOLD_SECONDS)
        _wait(lambda: _timeouts_logged(log, log_start), 60, f"{program} never saw its channel time out")
        return _timeouts_logged(log, log_start)
    finally:
        if previous.startswith("{ok,"):
            _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {previous[4:-1]}).")
        else:
            _rabbit_eval("application:unset_env(rabbit, consumer_timeout).")
        control.restart(program)


def _timeouts_logged(log: Path, offset: int) -> int:
    with log.open("rb") as file:
        file.seek(offset)
        records = [json.loads(line) for line in file if line.startswith(b"{")]
    return sum("PRECONDITION_FAILED" in json.dumps(record) for record in records)


def _rabbit_eval(expression: str) -> str:
    answer = subprocess.run(
        ["rabbitmqctl", "-q", "eval", expression], check=True, capture_output=True, text=True
    )
    return answer.stdout.strip()


def disturb_link(link, seconds: float) -> None:
    """A third of the time slow (0.3 s a chunk), a third stalled, a third reset; then healed."""
    try:
        link.slow(0.3)
        time.sleep(seconds / 3)
        link.stall()
        time.sleep(seconds / 3)
        link.reset()
        time.sleep(seconds / 3)
    finally:
        link.heal()


# Infrastructure stopped and started again


def stop_redis(platform: instance.Platform, seconds: float) -> None:
    """Shut Redis down (saving its data, as a Redis with persistence would keep it), start it again with
    the same options after `seconds`, and leave no dump file behind that was not there before."""
    client = redis.Redis.from_url(platform.instance.redis_url)
    config = client.config_get("*")
    dump = Path(config["dir"]) / config["dbfilename"]
    dump_was_there = dump.exists()
    command = [
        "redis-server", "--daemonize", "yes", "--port", config["port"], "--bind", *config["bind"].split(),
        "--save", config["save"], "--appendonly", config["appendonly"], "--dir", config["dir"],
        "--logfile", config["logfile"],
    ]  # fmt: skip
    client.shutdown(save=True)
    time.sleep(seconds)
    subprocess.run(command, check=True)
    _wait(lambda: _redis_answers(client), 30, "Redis did not come back")
    if not dump_was_there:
        dump.unlink(missing_ok=True)


def _redis_answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def restart_postgres() -> None:
    """POSTGRES_RESTART_COMMAND if set (CI's Postgres is a container: `docker restart <id>`), else the
    Debian cluster's own control command."""
    command = os.environ.get("POSTGRES_RESTART_COMMAND")
    if not command:
        (version,) = (path.name for path in Path("/etc/postgresql").iterdir())  # Debian's one cluster
        command = f"pg_ctlcluster --skip-systemctl-redirect {version} main restart"
    subprocess.run(shlex.split(command), check=True)


def restart_broker_node(seconds: float) -> None:
    """Stop the whole RabbitMQ node (not only its application) and start it as the machine does."""
    subprocess.run(["rabbitmqctl", "-q", "stop"], check=True)
    time.sleep(seconds)
    subprocess.run(["rabbitmq-server", "-detached"], check=True)
    subprocess.run(["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], check=True)


def _wait(condition, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.2)

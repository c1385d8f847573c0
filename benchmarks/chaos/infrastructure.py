"""Infrastructure faults, through each one's own control tools: Redis stopped, RabbitMQ's node restarted
or its consumer timeout lowered, Postgres restarted, a link slowed, stalled and reset."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import redis

from benchmarks.chaos import messages
from benchmarks.chaos.processes import pids, stopped, wait_for
from devtools import instance, supervisor

# RabbitMQ evaluates consumer timeouts once a minute: a delivery must be held longer than that to see one.
CONSUMER_TIMEOUT_MS = 5000
CONSUMER_TIMEOUT_HOLD_SECONDS = 75.0


def hold_deliveries_past_the_consumer_timeout(platform: instance.Platform, service: str) -> int:
    """Lower RabbitMQ's node-wide consumer timeout, restart the service's worker so that its channels
    take it, stop the worker once it consumes, give it deliveries (duplicates of recent events), hold it
    until the broker gives up on them (they go back to the queue), let it go on, then restore the timeout
    and restart the worker again. Returns how many times the worker was told its channel had timed out
    (from its JSON log)."""
    program = f"{service}-worker"
    control = supervisor.Supervisor(platform.instance)
    log = platform.instance.log_dir / f"{program}.log"
    previous = _rabbit_eval("application:get_env(rabbit, consumer_timeout).")
    _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {CONSUMER_TIMEOUT_MS}).")
    try:
        control.restart(program)
        queue = f"{service}.events"
        wait_for(lambda: _queue_stats(platform, queue)["consumers"], 60, f"{program} never consumed")
        log_start = log.stat().st_size
        with stopped(pids(platform, program)):
            messages.duplicate_latest_events(platform, service)
            wait_for(
                lambda: _queue_stats(platform, queue)["messages_unacknowledged"],
                30,
                f"nothing delivered to {program}",
            )
            time.sleep(CONSUMER_TIMEOUT_HOLD_SECONDS)
        wait_for(lambda: _timeouts_logged(log, log_start), 60, f"{program} never saw its channel time out")
        return _timeouts_logged(log, log_start)
    finally:
        if previous.startswith("{ok,"):
            _rabbit_eval(f"application:set_env(rabbit, consumer_timeout, {previous[4:-1]}).")
        else:
            _rabbit_eval("application:unset_env(rabbit, consumer_timeout).")
        control.restart(program)


def _queue_stats(platform: instance.Platform, name: str) -> dict:
    queues = messages.list_queues(platform, "consumers", "messages_unacknowledged")
    return next(queue for queue in queues if queue["name"] == name)


def _timeouts_logged(log: Path, offset: int) -> int:
    """Log records since `offset` that tell of a channel closed by the broker's consumer timeout."""
    timeouts = 0
    with log.open("rb") as file:
        file.seek(offset)
        for line in file:
            with contextlib.suppress(ValueError):  # a line still being written, or not JSON
                timeouts += "PRECONDITION_FAILED" in json.dumps(json.loads(line))
    return timeouts


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


def pause_redis(platform: instance.Platform, seconds: float) -> None:
    """CLIENT PAUSE ALL: Redis accepts connections and answers nothing for `seconds` (a hung server)."""
    redis.Redis.from_url(platform.instance.redis_url).client_pause(int(seconds * 1000), all=True)


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
    wait_for(lambda: _redis_answers(client), 30, "Redis did not come back")
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


def stop_broker_app(seconds: float) -> None:
    """The broker's application stopped (connections refused, queues kept on disk), then started."""
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
    time.sleep(seconds)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)


def restart_broker_node(seconds: float) -> None:
    """Stop the whole RabbitMQ node (not only its application) and start it as the machine does."""
    subprocess.run(["rabbitmqctl", "-q", "stop"], check=True)
    time.sleep(seconds)
    subprocess.run(["rabbitmq-server", "-detached"], check=True)
    # await_startup fails at once while the new node is not yet reachable: ask again until it answers.
    wait_for(lambda: subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=False).returncode == 0, 120,
             "the broker node did not start again")  # fmt: skip

"""Orders at a steady rate through the gateway, one real fault in the middle, then the invariants read from
the services' databases. Prints one JSON line: what clients saw during the fault, how long the platform
took to drain after it, and whether every invariant held once it was quiet again.

    .venv/bin/python benchmarks/fault_load.py --fault redis-pause
    .venv/bin/python benchmarks/fault_load.py --fault broker-stop --rate 6 --duration 40

Faults (benchmarks/chaos/faults.py): none, redis-pause (CLIENT PAUSE ALL: Redis hangs), redis-stop,
broker-stop (rabbitmqctl stop_app, then start_app), broker-restart (the whole node), postgres-restart,
kill-workers (SIGKILL every Celery worker of the instance), kill-orders-web, kill-orders-web-thrice,
kill-webs (every web server), bad-messages (what a worker cannot run, on every service's queue),
redeliver (every worker held while events pile up, then each event put back three times, out of
order), long-transaction (an event's transaction held open while later ones commit and extra relays
sweep), consumer-timeout (a worker holding deliveries past RabbitMQ's consumer timeout). The chaos suite
(tests/chaos) runs the same engine, and with --full also the link faults (broker-link, provider-link:
latency, stall and resets through a fault proxy). Redis, RabbitMQ and Postgres are this machine's own,
shared by every instance on it: run one fault at a time, with no other platform under load. The
invariants are listed in benchmarks/chaos/invariants.py; the figures and what they proved are in
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.chaos.engine import run_scenario  # noqa: E402
from benchmarks.chaos.faults import FAULTS, LINK_FAULTS  # noqa: E402
from benchmarks.chaos.load import Run, Scenario  # noqa: E402
from devtools import instance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The link faults need the platform wired through the chaos suite's proxies: run them there.
    parser.add_argument("--fault", required=True, choices=[f for f in FAULTS if f not in LINK_FAULTS])
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

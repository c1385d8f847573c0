"""Soak the outbox's and inbox's partitioning: sizes stay flat once retention drops partitions.

    .venv/bin/python benchmarks/partition_soak.py                      # 20 min at 15 orders/s
    .venv/bin/python benchmarks/partition_soak.py --duration 300 --rate 5

Starts a platform instance of its own (`soak`, ports +5000, Redis DB 5) with minute-sized partitions and
five minutes' retention (shared.messaging.partitions), places real orders through the saga with
benchmarks/saga_load.py for `--duration` seconds, and every `--sample-seconds` reads from each
service's database: the outbox's and inbox's partitions, rows and total size (tables, indexes and TOAST
of every partition), and the median execution time (Postgres' own EXPLAIN ANALYZE figure) of the
relay's query (the oldest pending rows, FOR UPDATE SKIP LOCKED) and of the inbox's insert of an event it
already holds (rolled back). Prints one JSON line per sample, then a table and the verdict: sizes flat
(the last sample within 25 % of the median after retention began dropping) and query times unchanged.
Exits 1 if not flat. Outside the test run: it takes the machine for the whole duration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import instance, topology  # noqa: E402

INSTANCE = {"PLATFORM_INSTANCE": "soak", "PLATFORM_PORT_OFFSET": "5000", "PLATFORM_REDIS_DB": "5"}
TABLES = ("messaging_outboxevent", "messaging_inboxmessage")
RELAY_QUERY = (
    "SELECT id FROM messaging_outboxevent WHERE published_at IS NULL ORDER BY created_at LIMIT 100 "
    "FOR UPDATE SKIP LOCKED"
)
# The inbox's insert (shared.messaging.inbox.claim) of an event it already holds: a redelivery.
INBOX_REPEAT = (
    "INSERT INTO messaging_inboxmessage (consumer, event_id, event_type, received_at, occurred_at, "
    "correlation_id, deliveries) VALUES (%s, %s, %s, now(), %s, '', 1) ON CONFLICT DO NOTHING"
)
LATEST_INBOX_ROW = (
    "SELECT consumer, event_id, event_type, occurred_at FROM messaging_inboxmessage ORDER BY id DESC LIMIT 1"
)


def manage_all(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage_all.py"), *args], env=env, check=True, cwd=ROOT)


def execution_ms(cursor, statement: str, params=None, repeats: int = 15) -> float | None:
    """The median of Postgres' own execution time of `statement`, each run rolled back."""
    times = []
    for _ in range(repeats):
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
        times.append(cursor.fetchone()[0][0]["Execution Time"])
        cursor.connection.rollback()
    return round(statistics.median(times), 3) if times else None


def table_figures(cursor, table: str) -> dict:
    cursor.execute(
        "SELECT count(*), coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
        "WHERE inhparent = %s::regclass",
        [table],
    )
    partitions, size = cursor.fetchone()
    cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (our table names)
    return {"partitions": partitions, "rows": cursor.fetchone()[0], "bytes": int(size)}


def sample(platform, services: list[str], elapsed: float) -> dict:
    figures: dict = {"elapsed_s": round(elapsed), "services": {}}
    for service in services:
        database = platform.instance.database(service)
        url = instance.replace_url_path(platform.endpoints.pg_admin_url, f"/{database}")
        # Client-side binding: EXPLAIN takes the parameters as literals.
        with (
            psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as connection,
            connection.cursor() as cursor,
        ):
            per_table = {table: table_figures(cursor, table) for table in TABLES}
            per_table["relay_query_ms"] = execution_ms(cursor, RELAY_QUERY)
            cursor.execute(LATEST_INBOX_ROW)
            latest = cursor.fetchone()
            per_table["inbox_repeat_ms"] = execution_ms(cursor, INBOX_REPEAT, latest) if latest else None
        figures["services"][service] = per_table
    figures["bytes"] = sum(s[t]["bytes"] for s in figures["services"].values() for t in TABLES)
    figures["rows"] = sum(s[t]["rows"] for s in figures["services"].values() for t in TABLES)
    return figures


def verdict(samples: list[dict], retention_begins: float) -> tuple[bool, str]:
    after = [s for s in samples if s["elapsed_s"] >= retention_begins]
    if len(after) < 3:
        return False, "too short: retention must run for at least three samples (raise --duration)"
    plateau = statistics.median(s["bytes"] for s in after)
    last = samples[-1]["bytes"]
    flat = last <= plateau * 1.25
    return flat, (
        f"total outbox+inbox size: median after retention began {plateau / 1e6:.1f} MB, "
        f"last {last / 1e6:.1f} MB, peak {max(s['bytes'] for s in samples) / 1e6:.1f} MB -> "
        + ("flat" if flat else "still growing")
    )


def print_table(samples: list[dict], services: list[str]) -> None:
    print(f"{'elapsed':>8} {'rows':>9} {'MB':>7}  " + "  ".join(f"{s[:9]:>22}" for s in services))
    print(f"{'':>8} {'':>9} {'':>7}  " + "  ".join(f"{'parts relay/inbox ms':>22}" for _ in services))
    for figures in samples:
        cells = []
        for service in services:
            f = figures["services"][service]
            parts = sum(f[t]["partitions"] for t in TABLES)
            inbox_ms = f["inbox_repeat_ms"] if f["inbox_repeat_ms"] is not None else float("nan")
            cells.append(f"{parts:>4} {f['relay_query_ms']:>7.3f}/{inbox_ms:>7.3f}")
        print(
            f"{figures['elapsed_s']:>7}s {figures['rows']:>9} {figures['bytes'] / 1e6:>7.1f}  "
            + "  ".join(f"{cell:>22}" for cell in cells)
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=1200.0, help="seconds of orders")
    parser.add_argument("--rate", type=float, default=15.0, help="orders per second")
    parser.add_argument("--partition-seconds", type=int, default=60)
    parser.add_argument("--retention-seconds", type=int, default=300, help="outbox and inbox")
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="leave the instance running afterwards")
    args = parser.parse_args()

    env = {
        **os.environ,
        **INSTANCE,
        "MESSAGING_PARTITION_SECONDS": str(args.partition_seconds),
        "MESSAGING_PARTITIONS_AHEAD": "3",
        "OUTBOX_RETENTION_SECONDS": str(args.retention_seconds),
        "INBOX_RETENTION_SECONDS": str(args.retention_seconds),
        # saga_load signs its customers in once: their tokens must outlive the soak.
        "JWT_ACCESS_MINUTES": str(int(args.duration // 60) + 30),
    }
    os.environ.update(INSTANCE)
    platform = instance.load_platform()
    services = topology.load().service_names
    manage_all(env, "up", "--no-install")
    samples: list[dict] = []
    try:
        load = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "saga_load.py"), "--rate", str(args.rate),
             "--duration", str(args.duration), "--port-offset", INSTANCE["PLATFORM_PORT_OFFSET"]],
            env=env, cwd=ROOT,
        )  # fmt: skip
        started = time.monotonic()
        stop = threading.Event()
        while load.poll() is None and not stop.wait(args.sample_seconds):
            figures = sample(platform, services, time.monotonic() - started)
            samples.append(figures)
            print(json.dumps(figures), flush=True)
        load_status = load.wait()
    finally:
        if not args.keep:
            manage_all(env, "down")
    print_table(samples, services)
    # Retention can first drop a partition once its upper bound is `retention` old.
    flat, summary = verdict(samples, args.retention_seconds + 2 * args.partition_seconds)
    print(summary)
    print(f"saga_load exit status {load_status}")
    return 0 if flat and load_status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

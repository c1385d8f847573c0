"""The benchmark scripts' own arithmetic: CPU accounting from /proc and process labels."""

from __future__ import annotations

import os
import time

from benchmarks import proc_cpu
from benchmarks.saga_load import process_group


def _burn(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def test_cpu_spent_by_this_process_is_counted_under_its_label():
    me = os.getpid()
    before = proc_cpu.snapshot()
    _burn(0.3)
    after = proc_cpu.snapshot()
    spent = proc_cpu.spent(before, after, lambda command: "me" if command == after[me][0] else None)
    # Other processes with the same command line may add a little; this one alone spent 0.3 s.
    assert 0.25 <= spent["me"] <= 2.0
    assert proc_cpu.seconds_of(me) >= after[me][1]


def test_a_process_that_started_between_snapshots_counts_from_zero_and_unlabelled_ones_are_left_out():
    before = {1: ("rabbit", 5.0)}
    after = {1: ("rabbit", 5.5), 2: ("rabbit", 0.25), 3: ("other", 9.0), 4: ("reused", 1.0)}
    before[4] = ("old command", 3.0)  # a recycled pid is a new process
    spent = proc_cpu.spent(before, after, lambda command: None if command == "other" else command)
    assert spent == {"rabbit": 0.75, "reused": 1.0}


def test_a_vanished_process_reads_as_zero():
    assert proc_cpu.seconds_of(2**22 + 12345) == 0.0


def test_platform_processes_are_labelled_by_service():
    ports = {8104: "orders", 8190: "payment_provider"}
    python = "/srv/.venv/bin/python /srv/.venv/bin/"
    web = f"{python}gunicorn config.wsgi:application --bind 127.0.0.1:8104 --workers 2"
    assert process_group(web, ports) == "orders web"
    assert process_group(f"{python}gunicorn app --bind 127.0.0.1:8190", ports) == "payment_provider web"
    worker = f"{python}celery -A config worker --loglevel INFO --concurrency 4 --hostname payments@%h"
    assert process_group(worker, ports) == "payments worker"
    assert process_group(f"{python}celery -A config beat --loglevel INFO", ports) == "beats"
    assert process_group("postgres: 15/main: orders orders 127.0.0.1(5) idle", ports) == "postgres"
    assert process_group("/usr/lib/erlang/erts-13/bin/beam.smp -- -s rabbit boot", ports) == "rabbitmq"
    assert process_group("/usr/bin/vim notes.txt", ports) is None

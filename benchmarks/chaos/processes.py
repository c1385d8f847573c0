"""The platform's processes: found through supervisord, killed by pid (also between a request's commit
and its answer), held with SIGSTOP."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from devtools import instance, supervisor


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


@contextlib.contextmanager
def stopped(pids_to_stop: list[int]):
    for pid in pids_to_stop:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids_to_stop:
            os.kill(pid, signal.SIGCONT)


def kill_repeatedly(platform: instance.Platform, program: str, seconds: float, *, times: int) -> int:
    """SIGKILL a program `times` over `seconds`, each time once supervisord has it RUNNING again: under
    load, some kill lands between a request's commit and its answer."""
    kills = 0
    for round_ in range(times):
        wait_for(lambda: pids(platform, program), 30, f"{program} did not come back")
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


def wait_for(condition, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.2)

"""CPU seconds spent by processes, read from /proc (Linux), for benchmarks that say where CPU goes.

A snapshot maps each live pid to (command line, user + system CPU seconds); the difference of two
snapshots, grouped by a label, is what each group of processes spent in between. A process that
exited between the snapshots is not counted (its last figures are gone with it).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Snapshot = dict[int, tuple[str, float]]


def snapshot() -> Snapshot:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (read := _read(entry)) is not None:
            found[int(entry.name)] = read
    return found


def seconds_of(pid: int) -> float:
    """One process's CPU seconds so far (0.0 once it has exited)."""
    read = _read(Path("/proc") / str(pid))
    return read[1] if read else 0.0


def _read(process: Path) -> tuple[str, float] | None:
    try:
        stat = (process / "stat").read_text()
        command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:  # exited while we looked
        return None
    # The fields after the command name in parentheses (which may itself hold spaces): utime is the
    # 14th field of the line, stime the 15th.
    fields = stat.rsplit(")", 1)[1].split()
    return command, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def spent(before: Snapshot, after: Snapshot, label: Callable[[str], str | None]) -> dict[str, float]:
    """CPU seconds per label between two snapshots; processes labelled None are left out."""
    totals: dict[str, float] = collections.defaultdict(float)
    for pid, (command, seconds) in after.items():
        name = label(command)
        if name is None:
            continue
        previous = before.get(pid)
        totals[name] += seconds - (previous[1] if previous and previous[0] == command else 0.0)
    return dict(totals)


def rabbitmq_label(command: str) -> str | None:
    return "rabbitmq" if "beam.smp" in command and "rabbit" in command else None

"""What the commands print and how they fail: one line a person can act on, never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

from devtools.paths import ROOT


class PlatformError(Exception):
    """An expected failure: the command line prints its message alone and exits with status 1."""


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def display(path: Path) -> str:
    """A path as the reader knows it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def wait_for(condition, timeout: float, interval: float = 0.3):
    """Poll `condition` until it returns something truthy (returned), or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)

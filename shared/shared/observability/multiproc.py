"""`python -m shared.observability.multiproc COMMAND ...`: a process group with a clean metrics directory.

prometheus_client's multiprocess mode keeps one file per process in PROMETHEUS_MULTIPROC_DIR, and
its documentation asks for the directory to be wiped before the group starts: files left by an
earlier run would be merged into the new one's numbers (and a reused PID would continue another
process's file). gunicorn's master and Celery's main process create metric files as soon as Django
loads, so the wipe must come before the program itself: this wrapper empties the directory, then
replaces itself with COMMAND (same PID, so supervisord and container runtimes signal COMMAND).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client (and shared.observability.metrics)


def reset_directory(path: Path) -> None:
    """Empty `path` (created if missing), keeping the directory itself."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m shared.observability.multiproc COMMAND [ARGS...]", file=sys.stderr)
        return 2
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        reset_directory(Path(directory))
    try:
        os.execvp(argv[0], argv)  # noqa: S606 (the command line is the caller's own)
    except OSError as exc:
        print(f"shared.observability.multiproc: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""gunicorn settings every service's web server loads (`--config python:shared.gunicorn_conf`).

In prometheus_client's multiprocess mode each worker writes its own file; when a worker exits (a
restart, a timeout), its live gauges must stop counting, which `mark_process_dead` does. Counters
and histograms of the dead worker stay in the sum, as a counter must never go down.
"""

from __future__ import annotations

import os


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

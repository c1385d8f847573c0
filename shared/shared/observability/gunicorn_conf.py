"""Gunicorn settings every web process shares: JSON logs (error and access), tracing after
fork, multiprocess metrics, workers that die with their master, and a keep-alive longer than the
gateway's.

Gunicorn reads `./gunicorn.conf.py` from its working directory by default; each service's is

    from shared.observability.gunicorn_conf import settings_for

    globals().update(settings_for("orders"))

so the same lines apply however the process is started (manage_all.py, the container image).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import sys

from shared.observability.logging import ContextFilter, formatter_config

# The access line's message; the fields below carry the same values for queries.
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s"
# Health probes and metric scrapes come every few seconds and say nothing about a flow: not logged.
UNLOGGED_PATHS = ("/health/", "/metrics")


class AccessLogFilter(logging.Filter):
    """Turns gunicorn's access atoms into fields: the request id, method, path, status, duration.

    The access line is written after the response, outside the request's context, so the correlation
    id comes from the X-Request-ID the service answered with (CorrelationIdMiddleware sets it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else None
        if atoms is None:
            return True
        if str(atoms.get("U", "")).startswith(UNLOGGED_PATHS):
            return False
        request_id = atoms.get("{x-request-id}o", "-")
        if request_id in ("-", ""):
            request_id = atoms.get("{x-request-id}i", "-")
        record.correlation_id = None if request_id in ("-", "") else request_id
        record.method = atoms.get("m")
        record.path = atoms.get("U")
        record.status = _int(atoms.get("s"))
        record.duration_ms = _int(atoms.get("M"))
        return True


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def logconfig_dict(service: str) -> dict:
    """gunicorn.error and gunicorn.access as JSON lines on stdout, like the application's own."""
    json = os.environ.get("LOG_FORMAT", "json") == "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter, "service": service},
            "access": {"()": AccessLogFilter},
        },
        "formatters": {"default": formatter_config(json=json)},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["context"],
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        "loggers": {
            # No handlers of their own: they propagate to the root's JSON handler.
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True, "filters": ["access"]},
        },
    }


def post_fork_hook(service: str, *, tracing: bool):
    """A `post_fork` hook: each worker dies with its master, and sets up tracing after the fork (see
    tracing.configure)."""

    def post_fork(server, worker) -> None:
        die_with_master(server)
        if tracing:
            from shared.observability import tracing as tracing_module

            tracing_module.configure(service)

    return post_fork


PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_master(server) -> None:
    """Have the kernel SIGKILL this worker when its master dies (Linux). A worker outlives a killed
    master by seconds and keeps the listening socket, so the master supervisord starts again could not
    bind its port meanwhile (about 10 s of 502s after a crash, in the chaos suite)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server.pid:  # the master died before the request took effect
        os._exit(1)


# How long a web server keeps an idle connection open. Longer than the gateway's upstream keep-alive
# (gateway/render.py, UPSTREAM_KEEPALIVE_SECONDS): gunicorn's default, 2 s, closed connections that nginx
# was about to reuse, and nginx answered such a POST with a 502 (seen under steady order load).
KEEPALIVE_SECONDS = 75


UNLIMITED = 0


def settings_for(service: str, *, tracing: bool = True) -> dict:
    """The gunicorn settings of one web process, for its gunicorn.conf.py."""
    settings = {
        "keepalive": KEEPALIVE_SECONDS,
        # No limit of its own on the request line (gunicorn's default, 4094, answers an HTML 414): the
        # gateway refuses a longer line than its buffers (6k) in the contract's shape, and behind it Django
        # answers a bad query parameter with the contract's 400, whatever its length.
        "limit_request_line": UNLIMITED,
        "logconfig_dict": logconfig_dict(service),
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "child_exit": child_exit,
    }
    settings["post_fork"] = post_fork_hook(service, tracing=tracing)
    return settings


_APP_URI = re.compile(r"^([A-Za-z_][\w.]*):[A-Za-z_]\w*$")


def service_from_argv(argv: list[str]) -> str:
    """A name for a non-Django web process, from the app gunicorn was asked to serve.

    `gateway.verifier:application` -> `gateway-verifier`, `sandbox.payment_provider.app:application`
    -> `payment-provider` (the supervisord program names), else SERVICE_NAME or `gunicorn`.
    """
    for argument in argv[1:]:
        if match := _APP_URI.match(argument):
            parts = [part for part in match.group(1).split(".") if part not in ("app", "sandbox")]
            return "-".join(parts).replace("_", "-")
    return os.environ.get("SERVICE_NAME", "gunicorn")


def child_exit(server, worker) -> None:
    """In prometheus_client's multiprocess mode each worker writes its own file; when a worker exits
    (a restart, a timeout) its live gauges must stop counting. Counters and histograms of the dead
    worker stay in the sum, as a counter must never go down."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

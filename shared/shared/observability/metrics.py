"""Prometheus metrics every service shares, and how they are exported from several processes.

Two kinds of metric:

- Facts counted where they happen (a task ran, a duplicate event was skipped, a breaker changed
  state: shared.http; the services add their own business counters). gunicorn runs several workers and Celery
  several pool processes, so these use prometheus_client's multiprocess mode: with
  PROMETHEUS_MULTIPROC_DIR set, every process writes its values to files in that directory and an
  export merges them all. `python -m shared.observability.multiproc` wipes the directory before a
  process group starts (docs/observability.md).
- State read at scrape time (outbox backlog, circuit breaker state, a service's own gauges such as
  orders not yet terminal): computed by the process that answers the scrape, straight from the
  database or Redis, so it is never stale and never summed across processes. Only the web `/metrics`
  includes them: one answer per service, whatever its number of workers. Each is defined beside what
  it reads (shared.messaging's outbox, shared.http's breakers, a service's app) and registered with
  `register_scrape_collector` in its app's `ready()`, so this module imports nothing of theirs.

Names and labels are a contract with the alert rules and dashboards: add, never rename.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime

from django.db import Error as DatabaseError  # InterfaceError too (a closed connection)
from django.db import transaction
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Saga steps take milliseconds; payment retries and reservation expiry take seconds to minutes.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)

TASK_RUNS = Counter(
    "celery_task_runs",
    "Celery task executions by task name and final state (succeeded, failed, retried, rejected).",
    ["task", "state"],
)
TASK_RUNTIME = Histogram(
    "celery_task_runtime_seconds", "Wall time of a Celery task execution.", ["task"], buckets=DURATION_BUCKETS
)
MESSAGES_REJECTED = Counter(
    "celery_messages_rejected",
    "Messages a worker could not run (undecodable body, disallowed content type, unknown task, invalid "
    "task message, malformed event, event version no handler reads): rejected to the queue's dead-letter "
    "exchange, never acknowledged.",
    ["reason"],
)
INBOX_DUPLICATES = Counter(
    "inbox_duplicates_skipped",
    "Events a consumer had already handled, skipped by the inbox.",
    ["event_type"],
)


def declare_label_sets(metric, label_sets: Iterable[dict[str, str]]) -> None:
    """Export every known label set from the start, at zero.

    A labelled series otherwise appears with its first increment, which `rate()` and `increase()`
    cannot see (they need two samples): the first declined card would never show on a dashboard.
    """
    for labels in label_sets:
        metric.labels(**labels)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def count_after_commit(counter: Counter, **labels: str) -> None:
    """Increment `counter` once the current transaction commits: a rolled-back fact is not counted."""
    metric = counter.labels(**labels) if labels else counter
    transaction.on_commit(metric.inc)


def observe_after_commit(histogram: Histogram, value: float, **labels: str) -> None:
    metric = histogram.labels(**labels) if labels else histogram
    transaction.on_commit(lambda: metric.observe(value))


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    """Seconds since `oldest`, 0 when there is none (an alert compares it with a threshold)."""
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


# --- state read at scrape time ----------------------------------------------------------------------


class DatabaseCollector(Collector):
    """A collector whose families come from database queries; a failing query drops them, not /metrics."""

    def describe(self) -> list:
        return []  # never query the database at registration time

    def collect(self) -> Iterable:
        try:
            return list(self.families())
        except DatabaseError as exc:
            extra = {"collector": type(self).__name__, "error": str(exc)}
            logger.warning("metrics query failed; gauges skipped", extra=extra)
            return []

    def families(self) -> Iterable:
        raise NotImplementedError


_scrape_collectors: list[Collector] = []


def register_scrape_collector(collector: Collector) -> Collector:
    """Add a collector that computes its values when the web `/metrics` is scraped (AppConfig.ready)."""
    if not any(type(existing) is type(collector) for existing in _scrape_collectors):
        _scrape_collectors.append(collector)
    return collector


def scrape_collectors() -> list[Collector]:
    return list(_scrape_collectors)


# --- export -------------------------------------------------------------------------------------------


class _ProcessRegistry(Collector):
    """This process's own registry, for when there is no multiprocess directory (tests, one process)."""

    def collect(self) -> Iterable:
        return REGISTRY.collect()


def counters_registry() -> CollectorRegistry:
    """What every process of the group counted: merged from the multiprocess files, or this process's."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    return registry


def service_registry() -> CollectorRegistry:
    """The web `/metrics`: the group's counters plus the state read at scrape time."""
    registry = counters_registry()
    for collector in scrape_collectors():
        registry.register(collector)
    return registry


def metrics_view(request) -> HttpResponse:
    """`GET /metrics` of every service (not routed by the gateway)."""
    started = time.perf_counter()
    body = generate_latest(service_registry())
    logger.debug("metrics exported", extra={"ms": round((time.perf_counter() - started) * 1000, 1)})
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def start_worker_exporter(port: int, address: str = "127.0.0.1") -> None:
    """Serve the worker group's counters on `port` from the worker's main process (a daemon thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=counters_registry())
    logger.info("worker metrics served", extra={"port": port, "address": address})


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges from the multiprocess directory (its counters stay)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)

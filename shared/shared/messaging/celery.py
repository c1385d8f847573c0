"""The Celery app of a service: configured from Django settings (CELERY_*), tasks discovered."""

from __future__ import annotations

import logging
import os
import time

from celery import Celery, states
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

from shared.observability import context, metrics, tracing

# celery_task_runs_total{state}: Celery's final states, in the words the dashboards use.
TASK_STATES = {
    states.SUCCESS: "succeeded",
    states.FAILURE: "failed",
    states.RETRY: "retried",
    states.REJECTED: "rejected",
    states.IGNORED: "ignored",
}

# Not "correlation_id": Celery already uses that name for the AMQP property holding the task id.
CORRELATION_HEADER = "flow_correlation_id"

logger = logging.getLogger(__name__)


def create_app(service: str) -> Celery:
    """`config/celery.py` of every service is `app = create_app("<service>")`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    worker_init.connect(_declare_topology, weak=False)
    worker_process_init.connect(_start_tracing, weak=False)
    task_prerun.connect(_recycle_database_connections, weak=False)
    task_postrun.connect(_recycle_database_connections, weak=False)
    before_task_publish.connect(_stamp_correlation_id, weak=False)
    task_prerun.connect(_bind_correlation_id, weak=False)
    task_postrun.connect(_unbind_correlation_id, weak=False)
    task_prerun.connect(_start_task_clock, weak=False)
    task_postrun.connect(_count_task_run, weak=False)
    worker_ready.connect(_serve_worker_metrics, weak=False)
    worker_process_shutdown.connect(_forget_pool_process, weak=False)
    return app


def _start_task_clock(task=None, **kwargs) -> None:
    if task is not None:
        task.request._metrics_started = time.perf_counter()


def _count_task_run(task=None, state=None, **kwargs) -> None:
    """celery_task_runs_total and celery_task_runtime_seconds, in the process that ran the task."""
    if task is None:
        return
    metrics.TASK_RUNS.labels(task=task.name, state=TASK_STATES.get(state, str(state).lower())).inc()
    started = getattr(task.request, "_metrics_started", None)
    if started is not None:
        metrics.TASK_RUNTIME.labels(task=task.name).observe(time.perf_counter() - started)


def _serve_worker_metrics(sender=None, **kwargs) -> None:
    """The worker's main process serves the counters of all its pool processes (WORKER_METRICS_PORT).

    Started once the pool has started, so the pool processes forked at start do not hold the
    listening socket (a fork copies file descriptors, though not threads).
    """
    port = os.environ.get("WORKER_METRICS_PORT")
    if not port:
        return
    try:
        metrics.start_worker_exporter(int(port), os.environ.get("WORKER_METRICS_ADDRESS", "127.0.0.1"))
    except (OSError, ValueError):  # the worker still works; its metrics are missing, and the log says why
        logger.exception("worker metrics not served", extra={"port": port})


def _forget_pool_process(pid=None, **kwargs) -> None:
    metrics.mark_process_dead(pid or os.getpid())


def _start_tracing(**kwargs) -> None:
    """Each prefork child sets tracing up for itself (after the fork, as OpenTelemetry asks).

    The periodic tasks (outbox relay, sweeps) start no trace of their own: one a second per service
    would bury the flows. What they publish still joins the trace recorded in each event.
    """
    from django.conf import settings

    periodic = {f"run/{entry['task']}" for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    tracing.configure(settings.SERVICE_NAME, quiet_roots=periodic)


def _stamp_correlation_id(headers=None, **kwargs) -> None:
    """A local task queued while handling a request or an event carries that flow's correlation id."""
    correlation_id = context.get_correlation_id()
    if headers is not None and correlation_id and CORRELATION_HEADER not in headers:
        headers[CORRELATION_HEADER] = correlation_id


def _bind_correlation_id(task=None, **kwargs) -> None:
    correlation_id = getattr(task.request, CORRELATION_HEADER, None) if task else None
    if correlation_id:
        task.request._correlation_binding = context.bind_until_reset(correlation_id)


def _unbind_correlation_id(task=None, **kwargs) -> None:
    binding = getattr(task.request, "_correlation_binding", None) if task else None
    if binding is not None:
        context.reset(binding)


def _recycle_database_connections(**kwargs) -> None:
    """Keep database connections across tasks, as Django does across requests.

    Celery's Django fix-up closes every connection before and after each task unless
    CELERY_DB_REUSE_MAX is set: a new Postgres connection per task, several milliseconds on every
    hop of the saga. The settings set that maximum high, and this handler applies Django's own rule
    instead: drop a connection only when it is broken or older than CONN_MAX_AGE.
    """
    from django.db import close_old_connections

    close_old_connections()


def _declare_topology(sender=None, **kwargs) -> None:
    """Workers declare the whole topology (alternate and dead-letter exchanges too) before consuming."""
    from django.conf import settings

    from shared.messaging import subscriptions, topology

    with sender.app.connection_for_write() as connection:
        topology.declare(
            connection,
            settings.SERVICE_NAME,
            subscriptions.subscribed_types(),
            settings.EVENTS_DELIVERY_LIMIT,
        )

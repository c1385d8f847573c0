"""The Celery app of a service: configured from Django settings (CELERY_*), tasks discovered."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init, worker_process_init

from shared import context, tracing

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
    return app


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

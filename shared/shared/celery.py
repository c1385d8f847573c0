"""The Celery app of a service: configured from Django settings (CELERY_*), tasks discovered."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_init

logger = logging.getLogger(__name__)


def create_app(service: str) -> Celery:
    """`config/celery.py` of every service is `app = create_app("<service>")`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    worker_init.connect(_declare_topology, weak=False)
    return app


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

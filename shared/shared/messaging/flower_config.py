"""Celery settings for Flower: `celery --config shared.messaging.flower_config flower`.

Flower's broker page lists the queues its workers report, and only those; a worker that is down (when an
operator most needs the page) reports nothing. Naming every queue of the platform here makes the page
show them all, backlog included. FLOWER_SERVICES lists the services (every deployment sets it).
"""

import os

from kombu import Queue

from shared.messaging import topology

_services = [name for name in os.environ.get("FLOWER_SERVICES", "").split(",") if name]

task_queues = [
    Queue(name)
    for service in _services
    for name in (
        topology.events_queue_name(service),
        topology.tasks_queue_name(service),
        topology.dead_letter_queue_name(service),
    )
] + [Queue(topology.UNROUTABLE_NAME)]

"""The CPU floor of one idempotent handler's bookkeeping through Django's ORM, in a service's process.

Run by benchmarks/celery_floor.py inside a service's Django environment:

    PYTHONPATH=. python3 manage_all.py manage inventory shell \
        -c "from benchmarks import orm_floor; orm_floor.main()"

Each round is what every saga handler does around its own work (design section 4): in one transaction
an inbox row and an outbox row, then the relay marking the outbox row published. Prints one JSON line:
the Django process's CPU and Postgres's (the backend serving this connection) per round.
"""

from __future__ import annotations

import json
import time
import uuid

from django.db import connection, transaction
from django.utils import timezone

from benchmarks import proc_cpu
from shared.messaging.models import InboxMessage, OutboxEvent

CONSUMER = "bench.floor"


def one_round(index: int) -> None:
    with transaction.atomic():
        InboxMessage.objects.create(consumer=CONSUMER, event_id=uuid.uuid4(), event_type=CONSUMER)
        event = OutboxEvent.objects.create(
            event_type=CONSUMER, envelope={"id": str(uuid.uuid4()), "data": {"index": index}}
        )
    OutboxEvent.objects.filter(pk=event.pk, published_at__isnull=True).update(published_at=timezone.now())


def main(rounds: int = 2000) -> None:
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    try:
        for index in range(100):  # warm: compiled queries, connection state
            one_round(index)
        postgres_before, django_before = proc_cpu.seconds_of(backend), time.process_time()
        started = time.monotonic()
        for index in range(rounds):
            one_round(index)
        wall = time.monotonic() - started
        django = time.process_time() - django_before
        postgres = proc_cpu.seconds_of(backend) - postgres_before
    finally:
        InboxMessage.objects.filter(consumer=CONSUMER).delete()
        OutboxEvent.objects.filter(event_type=CONSUMER).delete()
    print(json.dumps({"rounds": rounds, "wall": wall, "django": django, "postgres": postgres}))

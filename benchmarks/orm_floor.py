"""The CPU floor of the saga's inbox and outbox bookkeeping through Django's ORM, in a service's process.

Run by benchmarks/celery_floor.py inside a service's Django environment:

    PYTHONPATH=. python3 manage_all.py manage inventory shell \
        -c "from benchmarks import orm_floor; orm_floor.main()"

Two rounds, each what design section 4 makes every handler or publisher do around its own work:

- inbox: a transaction holding the handler's inbox row (every event a handler consumes);
- outbox: a transaction writing an outbox row, then the relay's claim (`SELECT ... FOR UPDATE SKIP
  LOCKED`) and the row marked published (every event published).

Prints one JSON line: per kind, the rounds, their wall time, the Django process's CPU and the CPU of
the Postgres backend serving this connection.
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


def inbox_round(index: int) -> None:
    with transaction.atomic():
        InboxMessage.objects.create(consumer=CONSUMER, event_id=uuid.uuid4(), event_type=CONSUMER)


def outbox_round(index: int) -> None:
    with transaction.atomic():
        event = OutboxEvent.objects.create(
            event_type=CONSUMER, envelope={"id": str(uuid.uuid4()), "data": {"index": index}}
        )
    with transaction.atomic():
        pending = OutboxEvent.objects.select_for_update(skip_locked=True).filter(published_at__isnull=True)
        claimed = list(pending.filter(id__in=[event.pk]).order_by("created_at")[:100])
        OutboxEvent.objects.filter(id__in=[row.pk for row in claimed]).update(published_at=timezone.now())


def measure(one_round, rounds: int, backend: int) -> dict:
    for index in range(100):  # warm: compiled queries, connection state
        one_round(index)
    postgres_before, django_before = proc_cpu.seconds_of(backend), time.process_time()
    started = time.monotonic()
    for index in range(rounds):
        one_round(index)
    return {
        "rounds": rounds,
        "wall": time.monotonic() - started,
        "django": time.process_time() - django_before,
        "postgres": proc_cpu.seconds_of(backend) - postgres_before,
    }


def main(rounds: int = 2000) -> None:
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    try:
        results = {
            "inbox": measure(inbox_round, rounds, backend),
            "outbox": measure(outbox_round, rounds, backend),
        }
    finally:
        InboxMessage.objects.filter(consumer=CONSUMER).delete()
        OutboxEvent.objects.filter(event_type=CONSUMER).delete()
    print(json.dumps(results))

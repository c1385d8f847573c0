"""The outbox relay: publishes committed outbox rows with publisher confirms, then marks them sent.

Rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so the fast path (right after the business
transaction commits) and the periodic sweep (any process, any number of them) never publish the same
row at the same time. A row is marked published only after the broker confirmed it; if the process
dies in between, the row is published again later and the consumers' inbox absorbs the duplicate.

Each event travels as a Celery task message named `events.deliver` on the `domain.events` topic
exchange with the event type as routing key, so every subscribing service's worker receives its own copy.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from opentelemetry.trace import SpanKind

from shared.messaging import topology
from shared.messaging.models import OutboxEvent
from shared.observability import tracing

logger = logging.getLogger(__name__)

DELIVER_TASK = "events.deliver"

# After the broker failed, the fast path leaves events to the sweep for a while instead of making
# every request wait for a connection timeout.
_BROKER_BACKOFF_SECONDS = 5.0
# How long a connect, and a publish's wait for the broker's confirm, may take. Without a limit, a link
# that stalls (a broker that hangs or stops reading, a middlebox that drops packets) holds the request
# that committed the event forever. Giving up loses nothing: the row stays unmarked for the sweep. The
# fast path runs inside a client's request, so it gives up soon; the sweep runs in a worker and waits
# longer, so that a slow but working link still carries every event.
FAST_PATH_TIMEOUT_SECONDS = 0.5
SWEEP_TIMEOUT_SECONDS = 5.0
_state = threading.local()
_broker_down_until = 0.0


def _producer(timeout: float):
    """One confirm-mode producer per thread, created on first use and dropped after a failure."""
    producer = getattr(_state, "producer", None)
    if producer is None:
        connection = current_app.connection_for_write(connect_timeout=timeout)
        # One attempt: kombu's connect() tries again after 2 s, and the fast path runs in a request,
        # which would wait twice that when the broker is down (the caller retries on a fresh one once).
        connection.ensure_connection(max_retries=0)
        channel = connection.channel()
        for entity in (topology.unroutable_exchange, topology.unroutable_queue, topology.events_exchange):
            entity(channel).declare()
        producer = connection.Producer(channel=channel, serializer="json")
        _state.producer = producer
    return producer


def _drop_producer() -> None:
    """Forget the thread's producer after a failure. Its connection is dropped without AMQP's closing
    handshake (`collect`): a broker that stopped reading, or a stalled link, never answers Close-Ok."""
    producer = getattr(_state, "producer", None)
    _state.producer = None
    if producer is not None:
        try:
            producer.connection.collect()
        except Exception:  # already broken; dropping is best effort
            logger.debug("dropping a broken broker connection failed", exc_info=True)


def _publish_one(producer, envelope: dict, timeout: float) -> None:
    """Publish as a Celery task message and wait for the broker's confirm (raises if refused).

    The publish span continues the trace recorded in the envelope (the request or handler that
    published it), whichever process relays it, and its context goes in the message headers, where
    the consumer's Celery instrumentation picks it up.
    """
    message = current_app.amqp.as_task_v2(envelope["id"], DELIVER_TASK, args=(envelope,), kwargs={})
    attributes = {"messaging.message.id": envelope["id"], "event.type": envelope["type"]}
    with tracing.event_span(
        f"{envelope['type']} publish",
        envelope.get("traceparent"),
        kind=SpanKind.PRODUCER,
        attributes=attributes,
    ):
        producer.publish(
            message.body,
            exchange=topology.events_exchange,
            routing_key=envelope["type"],
            headers={**message.headers, **tracing.message_headers()},
            serializer="json",
            delivery_mode=2,
            retry=False,
            timeout=timeout,
            confirm_timeout=timeout,
            **message.properties,
        )


def _publish_rows(rows: list[OutboxEvent], timeout: float) -> tuple[list, Exception | None]:
    """Publish in order; stop at the first failure. Returns the confirmed ids and the error, if any."""
    confirmed: list = []
    for row in rows:
        try:
            _publish_one(_producer(timeout), row.envelope, timeout)
        except Exception as first_error:
            _drop_producer()
            if isinstance(first_error, TimeoutError):  # the broker or the link hangs: a new one would too
                return confirmed, first_error
            # A connection idle for long may have been closed by the broker: retry once on a fresh one.
            try:
                _publish_one(_producer(timeout), row.envelope, timeout)
            except Exception:
                _drop_producer()
                return confirmed, first_error
        confirmed.append(row.id)
    return confirmed, None


def mark_published(ids: list, *, created_between: tuple | None = None) -> None:
    """Mark the rows published. `created_between` (their earliest and latest `created_at`), when known,
    lets Postgres look only in their partitions (shared.messaging.partitions)."""
    rows = OutboxEvent.objects.filter(id__in=ids)
    if created_between is not None:
        rows = rows.filter(created_at__range=created_between)
    rows.update(published_at=timezone.now(), attempts=F("attempts") + 1)


def relay_batch(*, ids: list | None = None, limit: int = 100, timeout: float = SWEEP_TIMEOUT_SECONDS) -> int:
    """Publish up to `limit` pending rows (only `ids` if given), giving up on a connect or a confirm
    after `timeout` seconds. Returns how many were confirmed."""
    global _broker_down_until
    with transaction.atomic():
        pending = OutboxEvent.objects.select_for_update(skip_locked=True).filter(published_at__isnull=True)
        if ids is not None:
            pending = pending.filter(id__in=ids)
        rows = list(pending.order_by("created_at")[:limit])
        if not rows:
            return 0
        confirmed, error = _publish_rows(rows, timeout)
        if confirmed:
            sent = rows[: len(confirmed)]
            mark_published(confirmed, created_between=(sent[0].created_at, sent[-1].created_at))
        if error is not None:
            _broker_down_until = time.monotonic() + _BROKER_BACKOFF_SECONDS
            failed = rows[len(confirmed)]
            OutboxEvent.objects.filter(id=failed.id).update(
                attempts=F("attempts") + 1, last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            logger.warning(
                "outbox publish failed; the sweep will retry",
                extra={"event_id": str(failed.id), "event_type": failed.event_type, "error": str(error)},
            )
    return len(confirmed)


def publish_after_commit(event_id) -> None:
    """The fast path, run by `transaction.on_commit`: never raises into the caller's request."""
    if time.monotonic() < _broker_down_until:
        return
    try:
        relay_batch(ids=[event_id], timeout=FAST_PATH_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("outbox fast path failed; the sweep will retry", extra={"event_id": str(event_id)})


def sweep(*, limit: int = 100, max_batches: int | None = None) -> int:
    """Publish everything pending, batch by batch, until none is left or the broker fails."""
    batches = max_batches or settings.OUTBOX_SWEEP_MAX_BATCHES
    total = 0
    for _ in range(batches):
        published = relay_batch(limit=limit)
        total += published
        if published < limit:
            break
    return total

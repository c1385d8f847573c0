"""Idempotent consumption: each (consumer, event id) takes effect once, however often it is delivered.

The inbox row is inserted in the same transaction as the handler's effect. A redelivered event finds
the row and is skipped; a concurrent duplicate waits on the unique index until the first commits, then
skips; a handler that fails rolls its inbox row back with its effect, so a retry starts clean.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from opentelemetry.trace import SpanKind
from tenacity import Retrying, retry_if_not_exception_type, stop_after_attempt, wait_random_exponential

from shared import contracts
from shared.messaging import subscriptions
from shared.messaging.events import (
    Event,
    InvalidEventData,
    MalformedEvent,
    OutsideDedupWindow,
    UnsupportedEventVersion,
)
from shared.messaging.models import InboxMessage, stored_correlation_id
from shared.observability import context, metrics, tracing

logger = logging.getLogger(__name__)

# check_violation: "no partition of relation ... found for row".
NO_PARTITION_FOR_ROW = "23514"


def claim(consumer: str, event: Event) -> bool:
    """Record the event for `consumer`; False if it was already recorded (a duplicate).

    The insert is the check: `ON CONFLICT DO NOTHING` weighs every unique index of the partition the
    row goes to (the event's `occurred_at` picks it, shared.messaging.partitions). A duplicate then
    bumps the row's `deliveries`, so the saga timeline can show how often an event came.
    An event whose partition is gone (past the inbox's retention) or not there yet cannot be told
    from a repeat: it is refused as outside the window, never applied.
    """
    table = connection.ops.quote_name(InboxMessage._meta.db_table)
    with connection.cursor() as cursor:
        try:
            cursor.execute(
                f"INSERT INTO {table} "  # noqa: S608 (table name is ours)
                "(consumer, event_id, event_type, received_at, occurred_at, order_id, correlation_id, "
                "deliveries) VALUES (%s, %s, %s, now(), %s, %s, %s, 1) ON CONFLICT DO NOTHING RETURNING 1",
                [
                    consumer,
                    event.id,
                    event.type,
                    event.occurred,
                    event.order_id,
                    stored_correlation_id(event.correlation_id),
                ],
            )
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == NO_PARTITION_FOR_ROW:
                raise OutsideDedupWindow(
                    f"{event.type} {event.id} occurred at {event.occurred_at}, outside the inbox's partitions"
                ) from exc
            raise
        if cursor.fetchone() is not None:
            return True
        cursor.execute(
            f"UPDATE {table} SET deliveries = deliveries + 1 WHERE consumer = %s AND event_id = %s",  # noqa: S608
            [consumer, event.id],
        )
        return False


def handle_once(consumer: str, handler, event: Event) -> bool:
    """Run `handler(event)` with its inbox row in one transaction. Returns False for a duplicate."""
    with transaction.atomic():
        if not claim(consumer, event):
            logger.info("duplicate event skipped", extra={"consumer": consumer, "event_id": event.id})
            metrics.INBOX_DUPLICATES.labels(event_type=event.type).inc()
            return False
        handler(event)
    return True


def deliver(envelope: dict) -> None:
    """Hand an event to every local handler subscribed to its type, each at most once.

    Transient failures (a deadlock, a dropped connection) are retried here, in this worker, a few
    times with jitter; re-publishing would fan the event out to every subscriber again. What still
    fails is raised so the message goes back to the queue and, past the delivery limit, to the
    dead-letter queue. An event in a version a handler does not read, or whose data breaks its
    contract (shared.contracts), raises a MalformedEvent before any handler runs: dead-lettered at once.
    """
    event = Event.from_envelope(envelope)
    handlers = subscriptions.handlers_for(event.type)
    log_extra = {"event_id": event.id, "event_type": event.type}
    if not handlers:
        logger.warning("event with no local handler ignored", extra=log_extra)
        return
    unread = [
        consumer
        for consumer, handler in handlers
        if event.version not in subscriptions.accepted_versions(handler)
    ]
    if unread:
        raise UnsupportedEventVersion(
            f"{event.type} version {event.version} is not read by {', '.join(unread)}"
        )
    check_contract(event)
    with (
        context.bound(correlation_id=event.correlation_id, causation_id=event.id),
        context.about(event_id=event.id, event_type=event.type, order_id=event.data.get("order_id")),
        tracing.event_span(
            f"{event.type} process",
            event.traceparent,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.message.id": event.id, "event.type": event.type},
        ),
    ):
        for consumer, handler in handlers:
            _handle_with_retries(consumer, handler, event)
            logger.info("event handled", extra={"consumer": consumer})


def check_contract(event: Event) -> None:
    """Refuse, before any handler runs, an event whose data breaks its type and version's schema: it
    would fail (or half-apply) in every handler on every delivery."""
    try:
        errors = contracts.data_errors(event.type, event.version, event.data)
    except contracts.EventContractError as exc:  # a version handlers accept but nobody declared
        raise UnsupportedEventVersion(str(exc)) from exc
    if errors:
        raise InvalidEventData(f"{event.type} version {event.version} breaks its schema: {'; '.join(errors)}")


def _handle_with_retries(consumer: str, handler, event: Event) -> None:
    for attempt in Retrying(
        stop=stop_after_attempt(settings.EVENTS_HANDLER_ATTEMPTS),
        # A malformed or out-of-window event fails the same way every time: dead-lettered at once.
        retry=retry_if_not_exception_type(MalformedEvent),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        reraise=True,
    ):
        with attempt:
            handle_once(consumer, handler, event)

"""The outbox and the inbox, one pair of tables in every service's own database.

Both rows name the order their event is about (`data.order_id`, null for events about no order) and the
flow it belongs to (`correlation_id`), copied from the envelope when the row is written, so that one
order's saga is found by an index instead of a scan of every envelope (shared.saga).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

# X-Request-ID is at most 128 characters (shared.observability.middleware); longer ids from elsewhere are cut.
CORRELATION_ID_MAX = 128


def stored_correlation_id(correlation_id: str | None) -> str:
    """The correlation id as the outbox and inbox keep it."""
    return (correlation_id or "")[:CORRELATION_ID_MAX]


class OutboxEvent(models.Model):
    """An event written in the same transaction as the state change it announces.

    The relay publishes it (with publisher confirms) and sets `published_at` only after the broker
    confirmed; so an event is never lost, and at worst published twice, which the inbox absorbs.

    Partitioned by `created_at` (shared.messaging.partitions): the database's primary key is
    (id, created_at); Django knows `id` alone, so that the admin can show the rows.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField(default=1)
    envelope = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    order_id = models.UUIDField(null=True, blank=True)
    # db_default: a process still running the previous release inserts rows without the column.
    correlation_id = models.CharField(max_length=CORRELATION_ID_MAX, blank=True, default="", db_default="")

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's only question: what is still unpublished, oldest first.
            models.Index(
                fields=["created_at"],
                name="outbox_pending_idx",
                condition=models.Q(published_at__isnull=True),
            ),
            # One order's events (the saga timeline); events about no order stay out of the index.
            models.Index(
                fields=["order_id"], name="outbox_order_idx", condition=models.Q(order_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class InboxMessage(models.Model):
    """A consumed event, recorded in the handler's own transaction: the second delivery finds it.

    Partitioned by the event's own `occurred_at` (shared.messaging.partitions), so that every delivery
    of an event meets the first one's row in the same partition; the database's primary key is
    (id, occurred_at), Django knows `id` alone.
    """

    consumer = models.CharField(max_length=200)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    occurred_at = models.DateTimeField(
        default=timezone.now,
        help_text="When the event happened, as its publisher stamped it: the partition key.",
    )
    order_id = models.UUIDField(null=True, blank=True)
    correlation_id = models.CharField(max_length=CORRELATION_ID_MAX, blank=True, default="", db_default="")
    deliveries = models.PositiveIntegerField(
        default=1,
        db_default=1,
        help_text="Deliveries that reached the inbox: the first, plus every duplicate skipped since. "
        "Attempts whose handler failed rolled back with it and are not counted.",
    )

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "event_id", "occurred_at"], name="inbox_once_per_consumer"
            ),
        ]
        indexes = [
            models.Index(
                fields=["order_id"], name="inbox_order_idx", condition=models.Q(order_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} <- {self.event_type} {self.event_id}"

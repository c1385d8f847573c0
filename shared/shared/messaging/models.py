"""The outbox and the inbox, one pair of tables in every service's own database."""

from __future__ import annotations

import uuid

from django.db import models


class OutboxEvent(models.Model):
    """An event written in the same transaction as the state change it announces.

    The relay publishes it (with publisher confirms) and sets `published_at` only after the broker
    confirmed; so an event is never lost, and at worst published twice, which the inbox absorbs.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField(default=1)
    envelope = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The relay's only question: what is still unpublished, oldest first.
            models.Index(
                fields=["created_at"],
                name="outbox_pending_idx",
                condition=models.Q(published_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class InboxMessage(models.Model):
    """A consumed event, recorded in the handler's own transaction: the second delivery finds it."""

    consumer = models.CharField(max_length=200)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_once_per_consumer"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} <- {self.event_type} {self.event_id}"

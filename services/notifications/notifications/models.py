"""The notification log: one row per e-mail the platform means to send, and what became of it."""

from __future__ import annotations

import uuid

from django.db import models


class Notification(models.Model):
    """An e-mail recorded when an event is handled, then sent after commit (and retried by a sweep).

    Exactly one row exists per (event, kind); a resend by an operator is a new row pointing at the
    original (`resend_of`), so the uniqueness covers only the rows events created.
    """

    class Kind(models.TextChoices):
        WELCOME = "welcome"
        ORDER_CONFIRMED = "order_confirmed"
        ORDER_CANCELLED = "order_cancelled"
        ORDER_REJECTED = "order_rejected"
        PAYMENT_REFUNDED = "payment_refunded"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The order the e-mail is about (the order and payment events name it), for operators to follow.
    order_id = models.UUIDField(null=True, blank=True)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    recipient = models.EmailField(max_length=254, blank=True)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When the sweep may (re)try a pending row: a little after creation, then with a doubling delay.
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "kind"],
                condition=models.Q(resend_of__isnull=True),
                name="notification_once_per_event_kind",
            ),
        ]
        indexes = [
            # The sweep's only question: which pending rows are due, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                name="notification_pending_due_idx",
                condition=models.Q(status="pending"),
            ),
            # One order's e-mails (the saga timeline in the orders admin).
            models.Index(
                fields=["order_id"], name="notification_order_idx", condition=models.Q(order_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient or '?'} ({self.status})"

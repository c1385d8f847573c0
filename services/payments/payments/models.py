"""One payment per order, and its ledger: the append-only stream of what happened to it.

`PaymentEvent` rows are the source of truth: one stream per payment (the payment's id), versions 1, 2, 3...
The `Payment` row is their projection (payments.ledger folds a stream into it), kept in the same
transaction as every append. Tasks carry only a payment id; every decision is taken from the Payment row,
under its row lock (docs/payments-ledger.md).
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.db import models
from django.utils import timezone

# The error a gap in a stream raises (integrity_constraint_violation: Django raises IntegrityError, as for
# the unique constraint; payments.event_store tells both apart from other integrity errors).
STREAM_GAP_SQLSTATE = "23000"


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    CAPTURED = "captured"
    FAILED = "failed"
    REFUNDED = "refunded"
    VOIDED = "voided"  # never charged: the order was cancelled or its reservation expired first


class FailureReason(models.TextChoices):
    DECLINED = "payment_declined"
    UNAVAILABLE = "payment_unavailable"
    TIMEOUT = "payment_timeout"


class Payment(models.Model):
    Status = PaymentStatus
    FailureReason = FailureReason

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    reservation_id = models.CharField(max_length=64, blank=True)
    user_id = models.UUIDField(db_index=True)
    customer_email = models.EmailField(blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    payment_token = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    last_error = models.CharField(
        max_length=500, blank=True, help_text="The provider's latest error or decline message."
    )
    provider_charge_id = models.CharField(max_length=64, blank=True)
    provider_refund_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Charge attempts made at the provider.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep re-queues this payment's outstanding work, if any."
    )
    deadline_at = models.DateTimeField(
        null=True, blank=True, help_text="Give up on an unavailable provider after this."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the stock reservation expires.")
    void_requested = models.BooleanField(
        default=False, help_text="The saga no longer wants this money: a racing capture is refunded at once."
    )
    charge_in_doubt = models.BooleanField(
        default=False,
        help_text="A charge request may have reached the provider without an answer (timeout, 5xx, 409).",
    )
    refund_requested = models.BooleanField(
        default=False, help_text="Money taken must go back (cancelled order, racing capture, operator)."
    )
    refund_requested_by = models.UUIDField(
        null=True,
        blank=True,
        help_text="identity's user id of the staff member who asked for the refund in the admin; "
        "empty when the saga asked (a cancelled order, a racing capture).",
    )
    # Set by the projection: the stream's first and latest event times (never the clock at save time,
    # so that rebuilding the row from its stream gives the same values).
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(
        default=0, editable=False, help_text="The version of the last ledger event this row reflects."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="payments_amount_not_negative"),
            models.CheckConstraint(
                condition=models.Q(status__in=PaymentStatus.values),
                name="payments_status_valid",
            ),
        ]
        indexes = [
            # The sweep's only question: whose outstanding work is due.
            models.Index(
                fields=["next_attempt_at"],
                name="payments_due_idx",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.id} for order {self.order_id} ({self.status})"

    @property
    def is_tombstone(self) -> bool:
        """A placeholder left by an `order.cancelled` that overtook `inventory.reserved`."""
        return self.status == self.Status.VOIDED and self.amount == 0 and not self.payment_token

    @property
    def owes_refund(self) -> bool:
        """Money may sit at the provider that must go back (or be found out first)."""
        return self.refund_requested and not self.provider_refund_id


class AppendOnlyError(Exception):
    """A ledger event was asked to change or disappear: history is only ever appended to."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("ledger events are never updated")

    def delete(self):
        raise AppendOnlyError("ledger events are never deleted")


class PaymentEvent(models.Model):
    """One fact in a payment's life, at `version` in the payment's stream (`payment_id`)."""

    id = models.BigAutoField(primary_key=True)
    # The stream id. No database foreign key: the stream is the source and the Payment row is derived, so
    # a missing projection can be rebuilt from here (the relation serves the admin's inline).
    payment = models.ForeignKey(
        Payment,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the unique (payment, version) index serves every lookup by stream
        related_name="ledger_events",
    )
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    data = models.JSONField()
    occurred_at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["payment_id", "version"]
        constraints = [
            # The arbiter of optimistic concurrency: two appends at one expected version cannot both land.
            models.UniqueConstraint(fields=["payment", "version"], name="payments_event_stream_version"),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="payments_event_version_positive"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="payments_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            # With the unique constraint, versions are 1, 2, 3... without a gap: an append whose expected
            # version is ahead of the stream finds no predecessor and is refused like a stale one.
            pgtrigger.Trigger(
                name="payments_event_follows_previous",
                operation=pgtrigger.Insert,
                when=pgtrigger.Before,
                func=pgtrigger.Func(
                    """
                    IF NEW.version > 1 AND NOT EXISTS (
                        SELECT 1 FROM {meta.db_table}
                        WHERE payment_id = NEW.payment_id AND version = NEW.version - 1
                    ) THEN
                        RAISE EXCEPTION 'payment % has no event at version %', NEW.payment_id, NEW.version - 1
                            USING ERRCODE = '23000';  -- STREAM_GAP_SQLSTATE
                    END IF;
                    RETURN NEW;
                    """
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"version {self.version}: {self.type}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("ledger events are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("ledger events are never deleted")

"""One payment per order: the single source of truth of what was asked of the provider and what it did.

Tasks carry only a payment id; every decision is taken from this row, under its row lock.
"""

from __future__ import annotations

import uuid

from django.db import models


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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

"""Orders, their lines and status history, the product read model and idempotency records.

An order's status only ever moves through `orders.services` (compare-and-set, docs/saga.md).
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    AWAITING_PAYMENT = "awaiting_payment"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# Confirmed is terminal for the saga, although its owner may still cancel it (refund, stock returned).
TERMINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED})


class StatusReason(models.TextChoices):
    NONE = "", "(none)"
    OUT_OF_STOCK = "out_of_stock"
    UNKNOWN_PRODUCT = "unknown_product"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_UNAVAILABLE = "payment_unavailable"
    PAYMENT_TIMEOUT = "payment_timeout"
    CUSTOMER_CANCELLED = "customer_cancelled"
    STAFF_CANCELLED = "staff_cancelled"  # by staff, for a customer (their API token or the admin)


def _money() -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=2)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField()
    customer_email = models.EmailField(blank=True)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    status_reason = models.CharField(max_length=32, choices=StatusReason.choices, blank=True, default="")
    total = _money()
    currency = models.CharField(max_length=3, default="USD")
    # A PSP token (e.g. "tok_visa"), handed to payments through the saga; never returned by the API.
    payment_token = models.CharField(max_length=100)
    shipping_address = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    terminal_at = models.DateTimeField(
        null=True, blank=True, help_text="When the order last reached confirmed, rejected or cancelled."
    )
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="order_user_recent_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_recent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=OrderStatus.values), name="order_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status_reason__in=StatusReason.values), name="order_status_reason_valid"
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"


class OrderItem(models.Model):
    """A line, with the name and price the customer was shown when ordering."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.UUIDField()
    name = models.CharField(max_length=200)
    unit_price = _money()
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product_id"], name="order_item_product_once"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="order_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"


class OrderStatusChange(models.Model):
    """One row per transition (and one for the creation): the order's history."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(max_length=20, choices=OrderStatus.choices)
    reason = models.CharField(max_length=32, choices=StatusReason.choices, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)
    actor_id = models.UUIDField(
        null=True,
        blank=True,
        help_text="identity's user id of who made the change (a cancel by the customer or staff); "
        "empty for the saga's own moves.",
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "status change"

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class ProductReadModel(models.Model):
    """catalog's products as its events describe them: the price fallback when catalog is down.

    `updated_at` is the `occurred_at` of the event that wrote the row, so an older event arriving late
    never overwrites a newer one.
    """

    product_id = models.UUIDField(primary_key=True)
    sku = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=200, blank=True)
    price = _money()
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        verbose_name = "product (read model)"
        verbose_name_plural = "products (read model)"

    def __str__(self) -> str:
        return f"{self.name or self.sku} ({self.product_id})"


class IdempotencyState(models.TextChoices):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


class IdempotencyRecord(models.Model):
    """An `Idempotency-Key` a user sent, and the response the first request with it got."""

    user_id = models.UUIDField()
    key = models.CharField(max_length=100)
    request_fingerprint = models.CharField(max_length=64, help_text="sha256 of the canonical request")
    state = models.CharField(
        max_length=10, choices=IdempotencyState.choices, default=IdempotencyState.IN_FLIGHT
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    # Who holds an in-flight record: its completion must still find this value (a takeover changes it).
    locked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="idempotency_key_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"

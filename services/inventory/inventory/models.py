"""Stock per product, reservations of it per order, and the audit trail of staff adjustments.

A unit of a product is in exactly one of three places: `on_hand` (free to reserve), `reserved` (held
for an order) or `sold`. Reservations move units between them, so their sum changes only through a
`StockAdjustment`. Check constraints make the database refuse a negative count, whatever the code does.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Stock(models.Model):
    product_id = models.UUIDField(primary_key=True, help_text="The catalog product's id.")
    sku = models.CharField(max_length=64, blank=True, help_text="From product.created, for operators.")
    on_hand = models.IntegerField(default=0, help_text="Units free to reserve.")
    reserved = models.IntegerField(default=0, help_text="Units held for orders awaiting payment.")
    sold = models.IntegerField(default=0, help_text="Units of confirmed orders.")
    product_deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When catalog deleted the product (the stock itself is kept)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id"]
        verbose_name_plural = "stock"
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="inventory_stock_on_hand_gte_0"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="inventory_stock_reserved_gte_0"),
            models.CheckConstraint(condition=Q(sold__gte=0), name="inventory_stock_sold_gte_0"),
        ]

    def __str__(self) -> str:
        return self.sku or str(self.product_id)

    @property
    def available(self) -> int:
        # Reserved units are already out of on_hand: what is on hand is what can be promised.
        return self.on_hand

    @property
    def total_units(self) -> int:
        return self.on_hand + self.reserved + self.sold


class ReservationStatus(models.TextChoices):
    HELD = "held", "Held (awaiting payment)"
    COMMITTED = "committed", "Committed (sold)"
    RELEASED = "released", "Released (units back on hand)"
    EXPIRED = "expired", "Expired (units held until the order is settled)"
    RETURNED = "returned", "Returned (confirmed order cancelled)"
    TOMBSTONE = "tombstone", "Tombstone (order cancelled before it was reserved)"
    FAILED = "failed", "Failed (nothing reserved)"


class Reservation(models.Model):
    """One per order, whatever happened to it: the unique order id makes every event about it idempotent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=16, choices=ReservationStatus.choices)
    failure_reason = models.CharField(
        max_length=32, blank=True, help_text="out_of_stock or unknown_product when status is failed."
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Deadline of a held reservation; none for tombstones and failures."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The expiry sweep's only question: which held reservations are past their deadline.
            models.Index(
                fields=["expires_at"],
                name="inventory_held_expiry_idx",
                condition=Q(status="held"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="held") | Q(expires_at__isnull=False),
                name="inventory_reservation_held_has_deadline",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.status})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    product_id = models.UUIDField()
    quantity = models.IntegerField()

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="inventory_line_quantity_gt_0"),
            models.UniqueConstraint(
                fields=["reservation", "product_id"], name="inventory_line_once_per_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


class StockAdjustment(models.Model):
    """A staff change of the units on hand (a delivery, a stock take, breakage): the audit trail."""

    stock = models.ForeignKey(Stock, on_delete=models.PROTECT, related_name="adjustments")
    delta = models.IntegerField()
    reason = models.CharField(max_length=255)
    actor_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="identity's user id of the staff member (API or admin); local:<username> for a local "
        "debugging login to this admin (admin:<local id> on rows written before that).",
    )
    actor_email = models.CharField(max_length=254, blank=True)
    on_hand_after = models.IntegerField(help_text="Units on hand right after this adjustment.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="inventory_adjustment_delta_not_0"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.stock_id}: {self.reason}"

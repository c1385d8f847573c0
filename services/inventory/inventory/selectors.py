"""inventory's reads."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from inventory.models import Stock, StockAdjustment
from shared.errors import NotFound


def stock_get(*, product_id: uuid.UUID) -> Stock:
    stock = Stock.objects.filter(product_id=product_id).first()
    if stock is None:
        raise NotFound("No stock is recorded for this product.")
    return stock


def stock_list() -> QuerySet[Stock]:
    return Stock.objects.order_by("product_id")


def stock_adjustment_list(*, product_id: uuid.UUID) -> QuerySet[StockAdjustment]:
    """Newest first. Unknown products are a 404, not an empty list."""
    stock = stock_get(product_id=product_id)
    return StockAdjustment.objects.filter(stock=stock).order_by("-created_at", "-id")

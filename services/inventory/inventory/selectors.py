"""inventory's reads."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from inventory.models import Reservation, Stock, StockAdjustment
from shared.saga.selectors import SagaRecord
from shared.web.errors import NotFound


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


def saga_records(*, order_id: uuid.UUID) -> list[SagaRecord]:
    """The order's reservation (one per order, whatever became of it), for the saga timeline (shared.saga).

    One record when it was made, one more for its current state when that changed since.
    """
    reservation = Reservation.objects.filter(order_id=order_id).prefetch_related("lines").first()
    if reservation is None:
        return []
    lines = [
        {"product_id": str(line.product_id), "quantity": line.quantity} for line in reservation.lines.all()
    ]
    units = sum(line["quantity"] for line in lines)
    details = {
        "lines": lines,
        "expires_at": reservation.expires_at.isoformat() if reservation.expires_at else None,
        "failure_reason": reservation.failure_reason or None,
    }
    record = {"kind": "reservation", "object_id": str(reservation.id), "admin_model": "inventory.reservation"}
    made = {
        "held": f"{units} units of {len(lines)} products held",
        "failed": f"nothing reserved: {reservation.failure_reason}",
        "tombstone": "tombstone: the order was cancelled before it was reserved",
    }
    # Rows are created held, failed or as a tombstone; later states are moves of a held reservation.
    first_status = reservation.status if reservation.status in made else "held"
    records: list[SagaRecord] = [
        {
            **record,
            "at": reservation.created_at,
            "status": first_status,
            "summary": made[first_status],
            "details": details,
        }
    ]
    if reservation.status != first_status:
        summary = f"now {reservation.get_status_display().lower()} (last change)"
        records.append(
            {
                **record,
                "at": reservation.updated_at,
                "status": reservation.status,
                "summary": summary,
                "details": details,
            }
        )
    return records

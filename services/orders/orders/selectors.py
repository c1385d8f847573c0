"""orders' reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from orders import cart
from orders.clients import ProductInfo
from orders.models import Order, OrderItem, OrderStatusChange, ProductReadModel
from shared.replica.reads import lag_tolerant
from shared.saga.selectors import SagaRecord
from shared.web.errors import NotFound


def _with_lines_and_history(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id")),
        Prefetch("history", queryset=OrderStatusChange.objects.order_by("at", "id")),
    )


def order_list(*, user_id: uuid.UUID, is_staff: bool = False, status: str | None = None) -> QuerySet[Order]:
    """A customer's own orders, newest first; staff see everyone's."""
    orders = Order.objects.all() if is_staff else Order.objects.filter(user_id=user_id)
    if status:
        orders = orders.filter(status=status)
    return _with_lines_and_history(orders.order_by("-created_at", "id"))


def order_list_lag_tolerant(
    *, user_id: uuid.UUID, is_staff: bool = False, status: str | None = None
) -> QuerySet[Order]:
    """`order_list` for the order list page: read where lag is tolerated (shared.replica), never behind
    the reader's own writes."""
    return lag_tolerant(order_list(user_id=user_id, is_staff=is_staff, status=status))


def _one_order(orders: QuerySet[Order], order_id: uuid.UUID) -> Order:
    order = orders.filter(id=order_id).first()
    if order is None:
        raise NotFound("No such order.", code="not_found")
    return order


def order_get(*, order_id: uuid.UUID, user_id: uuid.UUID, is_staff: bool = False) -> Order:
    """One order as its owner (or staff) sees it; anybody else's is NotFound, not forbidden."""
    return _one_order(order_list(user_id=user_id, is_staff=is_staff), order_id)


def order_get_lag_tolerant(*, order_id: uuid.UUID, user_id: uuid.UUID, is_staff: bool = False) -> Order:
    """`order_get` for the order page (its lines and status history): read where lag is tolerated."""
    return _one_order(order_list_lag_tolerant(user_id=user_id, is_staff=is_staff), order_id)


def read_model_products(product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProductInfo]:
    """The read model's products among `product_ids` (the fallback when catalog cannot answer)."""
    rows = ProductReadModel.objects.filter(product_id__in=list(product_ids))
    return {
        row.product_id: ProductInfo(
            product_id=row.product_id,
            sku=row.sku,
            name=row.name,
            price=row.price,
            currency=row.currency,
            is_active=row.is_active,
        )
        for row in rows
    }


def cart_get(*, user_id: uuid.UUID) -> cart.Cart:
    return cart.read(user_id)


def saga_records(*, order_id: uuid.UUID) -> list[SagaRecord]:
    """The order's status history, for the saga timeline (shared.saga): one record per transition."""
    changes = OrderStatusChange.objects.filter(order_id=order_id).order_by("at", "id")
    records: list[SagaRecord] = []
    for change in changes:
        summary = f"order {change.status}" + (f" ({change.reason})" if change.reason else "")
        if change.actor_id:
            summary += " by staff" if change.reason == "staff_cancelled" else " by the customer"
        records.append(
            {
                "kind": "status",
                "at": change.at,
                "status": change.status,
                "summary": summary,
                "object_id": str(order_id),
                "admin_model": "orders.order",
                "details": {
                    "reason": change.reason or None,
                    "actor_id": str(change.actor_id) if change.actor_id else None,
                },
            }
        )
    return records

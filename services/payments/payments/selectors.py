"""payments' reads."""

from __future__ import annotations

from django.db.models import QuerySet

from payments.models import Payment
from shared.errors import NotFound


def payment_list(*, user_id: str | None, order_id=None) -> QuerySet[Payment]:
    """Newest first; `user_id=None` means every customer's (staff).

    Tombstones are listed too (voided, 0.00): when `order.cancelled` and `inventory.reserved` race in
    two worker processes either may create the row, and the order must show one payment either way.
    """
    payments = Payment.objects.all()
    if user_id is not None:
        payments = payments.filter(user_id=user_id)
    if order_id is not None:
        payments = payments.filter(order_id=order_id)
    return payments.order_by("-created_at", "-id")


def payment_get(*, payment_id, user_id: str | None) -> Payment:
    """One payment; another customer's answers 404, exactly like one that does not exist."""
    payment = payment_list(user_id=user_id).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    return payment

"""payments' reads."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from payments.models import Payment, PaymentEvent
from shared.replica.reads import lag_tolerant
from shared.saga.selectors import SagaRecord
from shared.web.errors import NotFound


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


def payment_list_lag_tolerant(*, user_id: str | None, order_id=None) -> QuerySet[Payment]:
    """`payment_list` for the payments page: read where lag is tolerated (shared.replica), never behind
    the reader's own writes."""
    return lag_tolerant(payment_list(user_id=user_id, order_id=order_id))


def payment_get_lag_tolerant(*, payment_id, user_id: str | None) -> Payment:
    """One payment for the payment page, read where lag is tolerated; another customer's answers 404,
    exactly like one that does not exist."""
    payment = payment_list_lag_tolerant(user_id=user_id).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


def saga_records(*, order_id: uuid.UUID) -> list[SagaRecord]:
    """The order's payment (one per order), for the saga timeline (shared.saga): when it was created, its
    charge attempts and state now, and its refund when one was asked for. The card token never leaves.

    The row keeps counts and the latest state, not a history: times after creation are its last change
    (the payment.* events in the timeline carry the exact moments of capture, failure and refund).
    """
    payment = Payment.objects.filter(order_id=order_id).first()
    if payment is None:
        return []
    base = {"object_id": str(payment.id), "admin_model": "payments.payment"}
    amount = f"{payment.amount} {payment.currency}"
    if payment.is_tombstone:
        summary = "tombstone: the order was cancelled before its reservation arrived"
        return [
            {
                **base,
                "kind": "payment",
                "at": payment.created_at,
                "status": payment.status,
                "summary": summary,
                "details": {},
            }
        ]
    records: list[SagaRecord] = [
        {
            **base,
            "kind": "payment",
            "at": payment.created_at,
            "status": "pending",
            "summary": f"payment of {amount} created",
            "details": {"deadline_at": payment.deadline_at.isoformat() if payment.deadline_at else None},
        }
    ]
    attempts = {
        "attempts": payment.attempts,
        "failure_reason": payment.failure_reason or None,
        "last_error": payment.last_error or None,
        "next_attempt_at": payment.next_attempt_at.isoformat() if payment.next_attempt_at else None,
        "provider_charge_id": payment.provider_charge_id or None,
        "charge_in_doubt": payment.charge_in_doubt,
    }
    summary = f"{payment.status} after {payment.attempts} charge attempts"
    if payment.failure_reason:
        summary += f" ({payment.failure_reason})"
    if payment.status == Payment.Status.PENDING and payment.next_attempt_at:
        summary += f"; next attempt due {payment.next_attempt_at.isoformat()}"
    records.append(
        {
            **base,
            "kind": "charge",
            "at": payment.updated_at,
            "status": payment.status,
            "summary": summary,
            "details": attempts,
        }
    )
    if payment.refund_requested:
        done = bool(payment.provider_refund_id)
        records.append(
            {
                **base,
                "kind": "refund",
                "at": payment.updated_at,
                "status": "refunded" if done else "requested",
                "summary": f"refund of {amount} "
                + ("confirmed by the provider" if done else "asked for, not confirmed yet"),
                "details": {
                    "provider_refund_id": payment.provider_refund_id or None,
                    "requested_by": str(payment.refund_requested_by) if payment.refund_requested_by else None,
                },
            }
        )
    return records


def payment_stream(*, payment_id) -> QuerySet[PaymentEvent]:
    """A payment's ledger stream, oldest event first (docs/payments-ledger.md)."""
    return PaymentEvent.objects.filter(payment_id=payment_id).order_by("version")


def payment_stream_ids(*, after: uuid.UUID | None = None, limit: int = 500) -> list[uuid.UUID]:
    """The ids of the payments that have a stream, in id order, `limit` from just after `after`."""
    firsts = PaymentEvent.objects.filter(version=1)  # one per stream, without a DISTINCT
    if after is not None:
        firsts = firsts.filter(payment_id__gt=after)
    return list(firsts.order_by("payment_id").values_list("payment_id", flat=True)[:limit])


def payments_without_stream(*, payment_id=None) -> list[uuid.UUID]:
    """Rows no stream backs (written around the ledger): nothing to rebuild them from."""
    rows = Payment.objects.exclude(pk__in=PaymentEvent.objects.filter(version=1).values("payment_id"))
    if payment_id is not None:
        rows = rows.filter(pk=payment_id)
    return list(rows.order_by("pk").values_list("pk", flat=True))

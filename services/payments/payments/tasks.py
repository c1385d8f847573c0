"""payments' Celery tasks: thin, named explicitly (wire contracts), carrying only a payment id."""

from __future__ import annotations

from celery import shared_task

from payments import services


@shared_task(name=services.CHARGE_TASK, acks_late=True)
def payment_charge(payment_id: str) -> None:
    services.payment_charge(payment_id=payment_id)


@shared_task(name=services.REFUND_TASK, acks_late=True)
def payment_refund(payment_id: str) -> None:
    services.payment_refund(payment_id=payment_id)


@shared_task(name="payments.payments_retry_due", acks_late=True)
def payments_retry_due() -> int:
    """Beat, every PAYMENT_SWEEP_SECONDS: re-queue charges and refunds whose next attempt is due."""
    return services.payments_requeue_due()

"""orders' Celery tasks: thin; names are wire contracts."""

from __future__ import annotations

from celery import shared_task

from orders import services


@shared_task(name="orders.idempotency_purge", acks_late=True)
def idempotency_purge() -> int:
    """Beat, hourly: forget Idempotency-Keys older than IDEMPOTENCY_KEY_TTL_SECONDS (24 h)."""
    return services.idempotency_purge()

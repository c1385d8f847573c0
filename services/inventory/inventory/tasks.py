"""Celery tasks of inventory (explicit names: they are wire contracts)."""

from __future__ import annotations

from celery import shared_task

from inventory import services


@shared_task(name="inventory.reservations_expire", acks_late=True)
def reservations_expire() -> int:
    """Beat, every RESERVATION_SWEEP_SECONDS: announce held reservations past their deadline."""
    return services.reservations_expire()

"""identity's Celery tasks: thin; names are wire contracts."""

from __future__ import annotations

from celery import shared_task

from identity import services


@shared_task(name="identity.revocations_publish", acks_late=True)
def revocations_publish() -> int:
    """Beat: copy recent revocations (changed users, ended sign-ins) to Redis again."""
    return services.revocations_publish()

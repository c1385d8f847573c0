"""notifications' Celery tasks. Names are wire contracts: never rename them."""

from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task(name=services.SEND_TASK)
def notification_send(notification_id: str) -> bool:
    """Queued after the notification's row commits; a no-op if it was already sent."""
    return services.notification_send(notification_id=notification_id)


@shared_task(name="notifications.notifications_send_pending")
def notifications_send_pending() -> int:
    """The beat sweep (NOTIFICATION_SWEEP_SECONDS): pending rows whose task was lost or that failed."""
    return services.notifications_send_pending()

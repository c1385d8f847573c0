"""notifications' reads."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from notifications.models import Notification
from shared.replica.reads import lag_tolerant
from shared.saga.selectors import SagaRecord
from shared.web.errors import NotFound


def notification_list(*, user_id: str, is_staff: bool) -> QuerySet[Notification]:
    """A customer's own notifications, newest first; staff see everyone's."""
    notifications = Notification.objects.all()
    if not is_staff:
        try:
            notifications = notifications.filter(user_id=uuid.UUID(str(user_id)))
        except ValueError:  # a token whose subject is not a user UUID owns nothing here
            notifications = notifications.none()
    return notifications.order_by("-created_at", "-id")


def notification_list_lag_tolerant(*, user_id: str, is_staff: bool) -> QuerySet[Notification]:
    """`notification_list` for the notifications page: read where lag is tolerated (shared.replica),
    never behind the reader's own writes."""
    return lag_tolerant(notification_list(user_id=user_id, is_staff=is_staff))


def notification_get_lag_tolerant(*, notification_id, user_id: str, is_staff: bool) -> Notification:
    """One notification the caller may see, for its page, read where lag is tolerated; another
    customer's is reported as not found."""
    notifications = notification_list_lag_tolerant(user_id=user_id, is_staff=is_staff)
    notification = notifications.filter(id=notification_id).first()
    if notification is None:
        raise NotFound("Notification not found.")
    return notification


def saga_records(*, order_id: uuid.UUID) -> list[SagaRecord]:
    """The e-mails about the order (resends included), for the saga timeline (shared.saga)."""
    records: list[SagaRecord] = []
    for notification in Notification.objects.filter(order_id=order_id).order_by("created_at", "id"):
        summary = f"{notification.kind} e-mail {notification.status}"
        if notification.resend_of_id:
            summary += " (a resend)"
        records.append(
            {
                "kind": "notification",
                "at": notification.created_at,
                "status": notification.status,
                "summary": summary,
                "object_id": str(notification.id),
                "admin_model": "notifications.notification",
                "details": {
                    "event_type": notification.event_type,
                    "subject": notification.subject,
                    "attempts": notification.attempts,
                    "sent_at": notification.sent_at.isoformat() if notification.sent_at else None,
                    "last_error": notification.last_error or None,
                },
            }
        )
    return records

"""notifications' reads."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from notifications.models import Notification
from shared.errors import NotFound


def notification_list(*, user_id: str, is_staff: bool) -> QuerySet[Notification]:
    """A customer's own notifications, newest first; staff see everyone's."""
    notifications = Notification.objects.all()
    if not is_staff:
        try:
            notifications = notifications.filter(user_id=uuid.UUID(str(user_id)))
        except ValueError:  # a token whose subject is not a user UUID owns nothing here
            notifications = notifications.none()
    return notifications.order_by("-created_at", "-id")


def notification_get(*, notification_id, user_id: str, is_staff: bool) -> Notification:
    """One notification the caller may see; another customer's is reported as not found."""
    notification = notification_list(user_id=user_id, is_staff=is_staff).filter(id=notification_id).first()
    if notification is None:
        raise NotFound("Notification not found.")
    return notification

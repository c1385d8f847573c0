"""notifications' writes: record a notification for an event, send it once, retry it, resend a copy.

A notification is recorded in the handler's (inbox) transaction and sent after commit by a task; the
beat sweep sends whatever is still pending and due, so a lost task or a mail server outage loses
nothing. Sending holds the row's lock (`FOR UPDATE SKIP LOCKED`) and requires it to be pending, so a
task and the sweep, or two sweeps, never send the same row twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from notifications import emails
from notifications.models import Notification
from shared.messaging.events import Event, run_task_after_commit

logger = logging.getLogger(__name__)

Status = Notification.Status

# The longest wait between two attempts, however many failures came before.
MAX_RETRY_DELAY = timedelta(minutes=15)
NO_RECIPIENT_ERROR = "the event carries no e-mail address"
# The task that sends one notification, by its contract name (notifications.tasks declares it with this
# name): sent by name, so that this module does not import the tasks module, which imports it.
SEND_TASK = "notifications.notification_send"


def _first_sweep_at():
    """A new row is left to its own after-commit task for a moment before the sweep may take it."""
    return timezone.now() + timedelta(seconds=settings.NOTIFICATION_RETRY_SECONDS)


def _retry_at(attempts: int):
    delay = timedelta(seconds=settings.NOTIFICATION_RETRY_SECONDS * 2 ** max(attempts - 1, 0))
    return timezone.now() + min(delay, MAX_RETRY_DELAY)


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _queue_send(notification: Notification) -> None:
    run_task_after_commit(SEND_TASK, str(notification.id))


@transaction.atomic
def notification_record(*, event: Event, kind: str) -> Notification:
    """Record the notification `kind` for `event` (once per event and kind) and send it after commit.

    Called by the event handlers inside the inbox transaction. An event without a recipient address
    is recorded as failed (there is nobody to send it to) instead of blocking the queue.
    """
    text = emails.compose(kind, event.data)
    recipient = emails.recipient(kind, event.data)
    notification, created = Notification.objects.get_or_create(
        event_id=event.id,
        kind=kind,
        resend_of=None,
        defaults={
            "user_id": _uuid_or_none(event.data.get("user_id")),
            "order_id": _uuid_or_none(event.data.get("order_id")),
            "event_type": event.type,
            "recipient": recipient,
            "subject": text.subject,
            "body": text.body,
            "status": Status.PENDING if recipient else Status.FAILED,
            "last_error": "" if recipient else NO_RECIPIENT_ERROR,
            "next_attempt_at": _first_sweep_at(),
        },
    )
    if not created:
        logger.info("notification already recorded", extra={"event_id": event.id, "kind": kind})
    elif notification.status == Status.PENDING:
        _queue_send(notification)
    else:
        logger.warning("notification without recipient", extra={"event_id": event.id, "kind": kind})
    return notification


def _deliver(notification: Notification) -> None:
    message = EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        # Lets a mail log or a support tool tie the e-mail back to its row.
        headers={"X-Notification-Id": str(notification.id)},
    )
    if message.send(fail_silently=False) != 1:
        raise RuntimeError("the e-mail backend accepted no message")


def _record_failure(notification: Notification, error: str) -> None:
    notification.attempts += 1
    notification.last_error = error[:2000]
    if notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS or not notification.recipient:
        notification.status = Status.FAILED
    else:
        notification.next_attempt_at = _retry_at(notification.attempts)
    notification.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
    logger.warning(
        "notification not sent",
        extra={
            "notification_id": str(notification.id),
            "attempts": notification.attempts,
            "status": notification.status,
            "error": notification.last_error,
        },
    )


def notification_send(*, notification_id) -> bool:
    """Send one pending notification. Returns True if it was sent now.

    Skips (False) a row that is already sent or failed, or locked by another worker sending it right
    now. A failure counts an attempt and schedules a retry; after NOTIFICATION_MAX_ATTEMPTS the row
    is failed. The row stays locked while the e-mail is handed to the backend, so no other worker
    can send it meanwhile; only a database failure between the hand-off and the commit could lead
    to one repeat, which is the price of never losing a notification.
    """
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(id=notification_id, status=Status.PENDING)
            .first()
        )
        if notification is None:
            return False
        if not notification.recipient:
            _record_failure(notification, NO_RECIPIENT_ERROR)
            return False
        try:
            _deliver(notification)
        except Exception as exc:  # any backend error (SMTP refused, disk full) is retried later
            _record_failure(notification, f"{type(exc).__name__}: {exc}")
            return False
        notification.status = Status.SENT
        notification.sent_at = timezone.now()
        notification.attempts += 1
        notification.last_error = ""
        notification.save(update_fields=["status", "sent_at", "attempts", "last_error"])
    logger.info(
        "notification sent", extra={"notification_id": str(notification.id), "kind": notification.kind}
    )
    return True


def notifications_send_pending(*, limit: int = 100) -> int:
    """The sweep: send every pending notification that is due, oldest first. Returns how many went out."""
    due_ids = list(
        Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    return sum(notification_send(notification_id=notification_id) for notification_id in due_ids)


@transaction.atomic
def _record_copy(original: Notification) -> Notification:
    return Notification.objects.create(
        user_id=original.user_id,
        order_id=original.order_id,
        event_id=original.event_id,
        event_type=original.event_type,
        kind=original.kind,
        recipient=original.recipient,
        subject=original.subject,
        body=original.body,
        next_attempt_at=_first_sweep_at(),
        # Copies point at the notification the event created, however many times it is resent.
        resend_of_id=original.resend_of_id or original.id,
    )


def notification_resend(*, notifications: Iterable[Notification]) -> int:
    """Operator resend: record a new copy of each notification and send it now.

    Returns how many copies went out; a copy that could not be sent stays pending and the sweep
    retries it like any other notification.
    """
    sent = 0
    for original in notifications:
        copy = _record_copy(original)
        logger.info(
            "notification resent", extra={"notification_id": str(copy.id), "resend_of": str(original.id)}
        )
        sent += notification_send(notification_id=copy.id)
    return sent

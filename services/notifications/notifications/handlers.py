"""Event handlers: one notification per event. They run inside the inbox transaction (shared)."""

from __future__ import annotations

from notifications import services
from notifications.models import Notification
from shared.messaging.events import Event

Kind = Notification.Kind


def on_user_registered(event: Event) -> None:
    services.notification_record(event=event, kind=Kind.WELCOME)


def on_order_confirmed(event: Event) -> None:
    services.notification_record(event=event, kind=Kind.ORDER_CONFIRMED)


def on_order_cancelled(event: Event) -> None:
    services.notification_record(event=event, kind=Kind.ORDER_CANCELLED)


def on_order_rejected(event: Event) -> None:
    services.notification_record(event=event, kind=Kind.ORDER_REJECTED)


def on_payment_refunded(event: Event) -> None:
    services.notification_record(event=event, kind=Kind.PAYMENT_REFUNDED)

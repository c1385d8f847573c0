"""Helpers for notifications' tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid

from django.core.mail.backends.base import BaseEmailBackend
from rest_framework.test import APIClient

from shared.messaging.events import Event, new_event
from shared.testing import (
    access_token,
    assert_error,  # noqa: F401 (the tests import them from here)
)
from shared.testing import event_data as contract_event_data

NOTIFICATIONS_URL = "/api/v1/notifications/"
HANDLERS = "notifications.handlers"

# Event type -> (handler name, notification kind)
SUBSCRIBED = {
    "user.registered": ("on_user_registered", "welcome"),
    "order.confirmed": ("on_order_confirmed", "order_confirmed"),
    "order.cancelled": ("on_order_cancelled", "order_cancelled"),
    "order.rejected": ("on_order_rejected", "order_rejected"),
    "payment.refunded": ("on_payment_refunded", "payment_refunded"),
}


def event_data(event_type: str, *, user_id: str, email: str, order_id: str | None = None) -> dict:
    """A payload built from the event's contract (shared.contracts), for this user (and order)."""
    if event_type == "user.registered":
        return contract_event_data(event_type, user_id=user_id, email=email)
    order = {"order_id": order_id or str(uuid.uuid4()), "user_id": user_id, "customer_email": email}
    return contract_event_data(event_type, **order)


def make_event(
    event_type: str, *, user_id: str | None = None, email: str = "ada@example.com", **data
) -> Event:
    payload = event_data(event_type, user_id=user_id or str(uuid.uuid4()), email=email)
    payload.update(data)
    return new_event(event_type, contract_event_data(event_type, **payload))  # checked with `data`


def bearer_client(*, user_id: str, is_staff: bool = False) -> APIClient:
    client = APIClient()
    token = access_token(user_id=user_id, email="someone@example.com", is_staff=is_staff)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class FailingEmailBackend(BaseEmailBackend):
    """Stands in for a mail server that refuses the connection."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server unreachable")

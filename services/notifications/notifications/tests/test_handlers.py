"""Each subscribed event: exactly one notification and one e-mail, however often it is delivered."""

from __future__ import annotations

import importlib
import os
import uuid

import pytest
from django.core import mail

from notifications import services
from notifications.models import Notification
from notifications.tests.helpers import SUBSCRIBED, make_event
from shared.messaging.models import InboxMessage

pytestmark = pytest.mark.django_db

FILE_BACKEND = "notifications.mail.FileEmailBackend"

EVENT_TYPES = sorted(SUBSCRIBED)


def test_the_settings_subscribe_exactly_the_five_event_types(settings):
    assert sorted(settings.EVENT_SUBSCRIPTIONS) == EVENT_TYPES
    for event_type, (handler, _kind) in SUBSCRIBED.items():
        assert settings.EVENT_SUBSCRIPTIONS[event_type] == f"notifications.handlers.{handler}"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_event_records_one_notification_and_sends_one_email(
    event_type, deliver, queued_sends, run_queued_sends
):
    user_id = str(uuid.uuid4())
    event = make_event(event_type, user_id=user_id, email="ada@example.com")

    assert deliver(event) is True

    notification = Notification.objects.get()
    assert notification.kind == SUBSCRIBED[event_type][1]
    assert str(notification.event_id) == event.id
    assert notification.event_type == event_type
    assert str(notification.user_id) == user_id
    assert notification.recipient == "ada@example.com"
    assert notification.status == Notification.Status.PENDING
    assert queued_sends == [(str(notification.id),)]
    assert mail.outbox == []  # nothing is sent inside the handler's transaction

    assert run_queued_sends() == [True]

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.com"]
    assert message.subject == notification.subject
    assert message.body == notification.body
    assert message.extra_headers["X-Notification-Id"] == str(notification.id)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT
    assert notification.attempts == 1
    assert notification.sent_at is not None


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_delivering_the_same_event_three_times_changes_nothing(
    event_type, deliver, queued_sends, run_queued_sends
):
    event = make_event(event_type)

    assert [deliver(event) for _ in range(3)] == [True, False, False]
    run_queued_sends()

    assert Notification.objects.count() == 1
    assert InboxMessage.objects.filter(event_id=event.id).count() == 1
    assert len(mail.outbox) == 1


def test_the_unique_event_and_kind_holds_even_past_the_inbox(queued_sends):
    """A second consumer path (e.g. a renamed handler) must not record a second notification."""
    event = make_event("order.confirmed")

    first = services.notification_record(event=event, kind=Notification.Kind.ORDER_CONFIRMED)
    second = services.notification_record(event=event, kind=Notification.Kind.ORDER_CONFIRMED)

    assert first.pk == second.pk
    assert Notification.objects.count() == 1


def test_the_sweep_after_the_task_sends_nothing_again(deliver, run_queued_sends):
    deliver(make_event("order.confirmed"))
    run_queued_sends()
    Notification.objects.update(next_attempt_at=Notification.objects.get().created_at)

    assert services.notifications_send_pending() == 0
    assert len(mail.outbox) == 1


def test_an_event_without_an_address_is_recorded_failed_and_not_sent(deliver, queued_sends):
    deliver(make_event("order.rejected", customer_email=""))

    notification = Notification.objects.get()
    assert notification.status == Notification.Status.FAILED
    assert notification.last_error == services.NO_RECIPIENT_ERROR
    assert queued_sends == []
    assert mail.outbox == []


def test_an_event_missing_its_order_id_fails_and_records_nothing(deliver):
    event = make_event("order.confirmed")
    del event.data["order_id"]

    with pytest.raises(KeyError):
        deliver(event)

    # The inbox row rolled back with it: redelivery (and then the dead-letter queue) will see it again.
    assert Notification.objects.count() == 0
    assert InboxMessage.objects.count() == 0


def test_the_file_backend_writes_one_file_per_event(settings, tmp_path, deliver, run_queued_sends):
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path)

    for event_type in EVENT_TYPES:
        deliver(make_event(event_type, email="file@example.com"))
        deliver(make_event(event_type, email="file@example.com"))  # a different event: its own e-mail
    assert run_queued_sends() == [True] * 10

    files = sorted(tmp_path.iterdir())
    assert len(files) == 10
    contents = [path.read_text() for path in files]
    assert all("To: file@example.com" in text for text in contents)
    sent_ids = {
        line.split(": ")[1] for text in contents for line in text.splitlines() if "X-Notification-Id" in line
    }
    assert sent_ids == {str(pk) for pk in Notification.objects.values_list("id", flat=True)}


@pytest.mark.skipif("EMAIL_BACKEND" in os.environ, reason="the environment chooses the backend")
def test_locally_the_file_backend_is_ours():
    assert importlib.import_module("config.settings").EMAIL_BACKEND == FILE_BACKEND

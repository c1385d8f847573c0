"""Sending: once and only once, retried on failure, failed after the limit; resends; the texts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connections, transaction
from django.utils import timezone

from notifications import services, tasks
from notifications.models import Notification
from notifications.tests.conftest import FAILING_BACKEND, LOCMEM_BACKEND
from notifications.tests.helpers import make_event

pytestmark = pytest.mark.django_db

Status = Notification.Status


@pytest.fixture
def pending(queued_sends):
    """A recorded order.confirmed notification whose send has not run yet."""
    event = make_event(
        "order.confirmed", email="ada@example.com", order_id="0a1b2c3d-0000-4000-8000-000000000001"
    )
    return services.notification_record(event=event, kind=Notification.Kind.ORDER_CONFIRMED)


def make_due(notification: Notification) -> None:
    Notification.objects.filter(pk=notification.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_failed_send_counts_an_attempt_and_stays_pending_for_a_later_retry(settings, pending):
    settings.EMAIL_BACKEND = FAILING_BACKEND

    assert services.notification_send(notification_id=pending.id) is False

    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    assert pending.attempts == 1
    assert "ConnectionRefusedError: mail server unreachable" in pending.last_error
    assert pending.next_attempt_at > timezone.now()
    assert pending.sent_at is None


def test_the_sweep_retries_a_failed_send_once_it_is_due(settings, pending):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    services.notification_send(notification_id=pending.id)
    settings.EMAIL_BACKEND = LOCMEM_BACKEND

    assert services.notifications_send_pending() == 0  # not due yet: the retry waits
    make_due(pending)
    assert tasks.notifications_send_pending() == 1

    pending.refresh_from_db()
    assert pending.status == Status.SENT
    assert pending.attempts == 2
    assert pending.last_error == ""
    assert len(mail.outbox) == 1


def test_the_retry_delay_doubles_with_each_failure(settings, pending):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    settings.NOTIFICATION_RETRY_SECONDS = 10
    delays = []
    for _ in range(3):
        before = timezone.now()
        services.notification_send(notification_id=pending.id)
        pending.refresh_from_db()
        delays.append(round((pending.next_attempt_at - before).total_seconds()))

    assert delays == [10, 20, 40]


def test_after_max_attempts_the_notification_is_failed_and_never_tried_again(settings, pending):
    settings.EMAIL_BACKEND = FAILING_BACKEND
    settings.NOTIFICATION_MAX_ATTEMPTS = 3

    results = [services.notification_send(notification_id=pending.id) for _ in range(3)]

    pending.refresh_from_db()
    assert results == [False, False, False]
    assert pending.status == Status.FAILED
    assert pending.attempts == 3
    settings.EMAIL_BACKEND = LOCMEM_BACKEND
    make_due(pending)
    assert services.notification_send(notification_id=pending.id) is False
    assert services.notifications_send_pending() == 0
    assert mail.outbox == []
    pending.refresh_from_db()
    assert pending.attempts == 3


def test_a_sent_notification_is_never_sent_again(pending):
    assert services.notification_send(notification_id=pending.id) is True
    make_due(pending)

    assert services.notification_send(notification_id=pending.id) is False
    assert tasks.notification_send(str(pending.id)) is False
    assert services.notifications_send_pending() == 0
    assert len(mail.outbox) == 1


def test_the_sweep_leaves_a_fresh_notification_to_its_own_task(pending):
    assert services.notifications_send_pending() == 0
    assert mail.outbox == []

    make_due(pending)
    assert services.notifications_send_pending() == 1
    assert len(mail.outbox) == 1


def test_the_sweep_sends_every_due_notification_once(queued_sends):
    notifications = [
        services.notification_record(
            event=make_event("user.registered", email=f"u{i}@example.com"), kind="welcome"
        )
        for i in range(3)
    ]
    for notification in notifications:
        make_due(notification)

    assert services.notifications_send_pending() == 3
    assert services.notifications_send_pending() == 0
    assert sorted(message.to[0] for message in mail.outbox) == [
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
    ]


def test_a_notification_without_recipient_is_failed_at_once(queued_sends):
    notification = services.notification_record(
        event=make_event("payment.refunded", customer_email=""), kind=Notification.Kind.PAYMENT_REFUNDED
    )

    assert notification.status == Status.FAILED
    assert services.notification_send(notification_id=notification.id) is False
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_row_being_sent_by_another_worker_is_skipped_not_sent_twice(queued_sends):
    notification = services.notification_record(event=make_event("order.rejected"), kind="order_rejected")
    locked, release = threading.Event(), threading.Event()

    def other_worker_holds_the_row():
        try:
            with transaction.atomic():
                Notification.objects.select_for_update().get(pk=notification.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    other = threading.Thread(target=other_worker_holds_the_row)
    other.start()
    try:
        assert locked.wait(10)
        assert services.notification_send(notification_id=notification.id) is False
    finally:
        release.set()
        other.join(10)

    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.status == Status.PENDING
    assert notification.attempts == 0


def test_resend_records_and_sends_a_new_copy(pending):
    services.notification_send(notification_id=pending.id)

    assert services.notification_resend(notifications=[pending]) == 1

    copy = Notification.objects.exclude(pk=pending.pk).get()
    pending.refresh_from_db()
    assert copy.resend_of_id == pending.id
    assert (copy.event_id, copy.kind, copy.recipient, copy.subject, copy.body) == (
        pending.event_id,
        pending.kind,
        pending.recipient,
        pending.subject,
        pending.body,
    )
    assert copy.status == Status.SENT
    assert len(mail.outbox) == 2
    assert mail.outbox[1].extra_headers["X-Notification-Id"] == str(copy.id)
    assert pending.attempts == 1  # the original is left as it was


def test_a_resend_of_a_resend_points_at_the_original(pending):
    services.notification_resend(notifications=[pending])
    first_copy = Notification.objects.get(resend_of=pending)

    services.notification_resend(notifications=[first_copy])

    assert Notification.objects.filter(resend_of=pending).count() == 2


def test_a_resend_that_fails_stays_pending_for_the_sweep(settings, pending):
    settings.EMAIL_BACKEND = FAILING_BACKEND

    assert services.notification_resend(notifications=[pending]) == 0

    copy = Notification.objects.get(resend_of=pending)
    assert copy.status == Status.PENDING
    assert copy.attempts == 1


# The texts


def test_order_confirmed_names_the_order_total_and_items(pending):
    assert pending.subject == "Order 0a1b2c3d-0000-4000-8000-000000000001 confirmed"
    assert "Total: 30.00 USD" in pending.body
    assert "2 x Blue mug at 12.50 USD" in pending.body


def test_order_cancelled_gives_the_reason_and_what_happens_to_the_money(queued_sends):
    event = make_event("order.cancelled", reason="payment_declined", previous_status="awaiting_payment")
    notification = services.notification_record(event=event, kind="order_cancelled")

    assert event.data["order_id"] in notification.subject
    assert "because the payment was declined" in notification.body
    assert "Order total: 30.00 USD" in notification.body
    assert "You have not been charged." in notification.body


def test_order_cancelled_after_confirmation_announces_the_refund(queued_sends):
    notification = services.notification_record(event=make_event("order.cancelled"), kind="order_cancelled")

    assert "because you cancelled it" in notification.body
    assert "will be refunded" in notification.body


def test_order_cancelled_by_staff_says_customer_service_cancelled_it(queued_sends):
    event = make_event("order.cancelled", reason="staff_cancelled")
    notification = services.notification_record(event=event, kind="order_cancelled")

    assert "was cancelled because our customer service cancelled it." in notification.body
    assert "will be refunded" in notification.body


def test_the_order_an_e_mail_is_about_is_recorded_and_kept_by_resends(queued_sends):
    event = make_event("payment.refunded")
    notification = services.notification_record(event=event, kind="payment_refunded")
    services.notification_resend(notifications=[notification])

    assert {str(row.order_id) for row in Notification.objects.all()} == {event.data["order_id"]}
    welcome = services.notification_record(event=make_event("user.registered"), kind="welcome")
    assert welcome.order_id is None


def test_order_rejected_gives_the_reason(queued_sends):
    event = make_event("order.rejected", reason="unknown_product")
    notification = services.notification_record(event=event, kind="order_rejected")

    assert notification.subject == f"Order {event.data['order_id']} could not be accepted"
    assert "no longer sold" in notification.body


def test_payment_refunded_names_the_amount_and_order(queued_sends):
    event = make_event("payment.refunded", amount="12.50")
    notification = services.notification_record(event=event, kind="payment_refunded")

    assert notification.subject == f"Refund of 12.50 USD for order {event.data['order_id']}"


def test_welcome_greets_by_name(queued_sends):
    notification = services.notification_record(event=make_event("user.registered"), kind="welcome")

    assert notification.subject == "Welcome to the order platform"
    assert notification.body.startswith("Hello Ada Lovelace,")
    assert notification.recipient == "ada@example.com"

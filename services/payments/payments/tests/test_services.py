"""Charging and refunding against the real sandbox: outcomes, retries, deadlines, breaker, races."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from payments import clients, services
from payments.models import Payment
from payments.tests.helpers import (
    captured_payment,
    create_payment,
    deliver,
    events,
    expire_mid_charge,
    expired_event,
    make_due,
    published_types,
)
from shared.testing import wait_until
from shared.web.errors import Conflict

pytestmark = pytest.mark.django_db

Status = Payment.Status


def refresh(payment: Payment) -> Payment:
    payment.refresh_from_db()
    return payment


# Creation


def test_a_reservation_creates_a_pending_payment_and_queues_its_charge(tasks, committed):
    before = timezone.now()
    with committed():
        payment = create_payment(total="12.50", expires_in=300)

    payment = refresh(payment)
    assert (payment.status, payment.amount, payment.currency, payment.attempts) == (
        Status.PENDING,
        12.5,
        "USD",
        0,
    )
    assert payment.payment_token == "tok_visa"
    # deadline = min(now + PAYMENT_DEADLINE_SECONDS (30 s), expires_at (300 s))
    assert before + timedelta(seconds=29) < payment.deadline_at < timezone.now() + timedelta(seconds=31)
    assert payment.next_attempt_at > timezone.now()  # owned by the queued task; the sweep waits
    assert tasks.names() == [("payments.payment_charge", (str(payment.id),))]


def test_the_deadline_is_capped_by_the_reservation_expiry():
    payment = create_payment(expires_in=5)

    assert payment.deadline_at == payment.expires_at


# Outcomes


def test_tok_visa_is_captured_and_announced_once(provider):
    payment = services.payment_charge(payment_id=create_payment(total="12.50").id)

    assert payment.status == Status.CAPTURED
    assert payment.attempts == 1
    assert payment.next_attempt_at is None
    assert payment.charge_in_doubt is False
    assert events("payment.succeeded") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "amount": "12.50",
            "currency": "USD",
        }
    ]
    assert published_types() == ["payment.succeeded"]
    charges = provider.charges_for(payment.order_id)
    assert [(charge["id"], charge["amount"], charge["idempotency_key"]) for charge in charges] == [
        (payment.provider_charge_id, "12.50", f"order-{payment.order_id}-charge")
    ]
    assert provider.ledger()["charges"] == 1


def test_charging_a_captured_payment_again_does_nothing(provider):
    payment = captured_payment()

    services.payment_charge(payment_id=payment.id)

    assert refresh(payment).status == Status.CAPTURED
    assert len(events("payment.succeeded")) == 1
    assert provider.requests_received() == 1


def test_tok_charge_declined_fails_with_payment_declined(provider):
    payment = services.payment_charge(payment_id=create_payment(token="tok_chargeDeclined").id)

    assert (payment.status, payment.failure_reason) == (Status.FAILED, "payment_declined")
    assert payment.charge_in_doubt is False
    assert events("payment.failed") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "reason": "payment_declined",
            "message": "Your card was declined.",
        }
    ]
    assert published_types() == ["payment.failed"]
    assert provider.ledger()["charges"] == 0


def test_an_unknown_token_is_declined(provider):
    payment = services.payment_charge(payment_id=create_payment(token="tok_stolen").id)

    assert (payment.status, payment.failure_reason) == (Status.FAILED, "payment_declined")
    assert provider.ledger()["charges"] == 0


# The provider failing


def test_failures_within_one_attempt_are_retried_by_the_client(provider):
    provider.set_faults(failure_budget=2)

    payment = services.payment_charge(payment_id=create_payment().id)

    assert payment.status == Status.CAPTURED
    assert payment.attempts == 1
    assert provider.requests_received() == 3
    assert provider.ledger()["charges"] == 1


def test_provider_500s_then_recovery_before_the_deadline_captures_once(provider, tasks, committed):
    provider.set_faults(failure_budget=3)  # the whole first attempt (3 requests) fails
    payment = create_payment()

    started = timezone.now()
    payment = services.payment_charge(payment_id=payment.id)

    assert payment.status == Status.PENDING
    assert payment.attempts == 1
    assert payment.charge_in_doubt is True  # a 500 might have been a charge that answered badly
    assert "HTTP 500" in payment.last_error
    assert (
        started + timedelta(seconds=0.4) < payment.next_attempt_at < timezone.now() + timedelta(seconds=0.6)
    )
    assert published_types() == []

    make_due(payment)
    with committed():
        assert services.payments_requeue_due() == 1
    tasks.run_all()

    payment = refresh(payment)
    assert payment.status == Status.CAPTURED
    assert payment.attempts == 2
    assert len(events("payment.succeeded")) == 1
    assert provider.ledger()["charges"] == 1
    assert len(provider.charges_for(payment.order_id)) == 1


def test_backoff_doubles_up_to_five_seconds(provider, reset_breaker):
    provider.set_faults(error_rate=1)
    payment = create_payment()
    delays = []

    for _ in range(5):
        payment = services.payment_charge(payment_id=payment.id)
        delays.append((payment.next_attempt_at - timezone.now()).total_seconds())
        reset_breaker()  # an open circuit would refuse the fifth attempt; this test is about the schedule

    assert [round(delay * 2) / 2 for delay in delays] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert refresh(payment).status == Status.PENDING


def test_still_unavailable_past_the_deadline_fails_with_payment_unavailable(provider):
    provider.set_faults(error_rate=1)
    payment = create_payment()
    Payment.objects.filter(pk=payment.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))

    payment = services.payment_charge(payment_id=payment.id)

    assert (payment.status, payment.failure_reason) == (Status.FAILED, "payment_unavailable")
    assert events("payment.failed") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "reason": "payment_unavailable",
            "message": services.UNAVAILABLE_MESSAGE,
        }
    ]
    # The 500s might have hidden a charge: the provider will be asked before the payment is closed.
    assert (payment.charge_in_doubt, payment.refund_requested) == (True, True)
    assert payment.next_attempt_at <= timezone.now()


def test_a_failed_payment_in_doubt_is_settled_with_nothing_taken(provider, tasks, committed):
    provider.set_faults(error_rate=1)
    payment = create_payment()
    Payment.objects.filter(pk=payment.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    services.payment_charge(payment_id=payment.id)
    provider.clear_faults()

    with committed():
        services.payments_requeue_due()
    tasks.run_all()

    payment = refresh(payment)
    assert payment.status == Status.FAILED
    assert (payment.charge_in_doubt, payment.refund_requested, payment.next_attempt_at) == (
        False,
        False,
        None,
    )
    assert provider.ledger() == {**provider.ledger(), "charges": 0, "refunds": 0}
    assert "payment.refunded" not in published_types()


def test_the_breaker_opens_and_then_fails_fast_without_calling_the_provider(provider, settings):
    provider.set_faults(error_rate=1)
    payment = create_payment()
    for _ in range(settings.PROVIDER_BREAKER_FAIL_MAX):
        payment = services.payment_charge(payment_id=payment.id)
        assert payment.status == Status.PENDING
    assert clients.provider().breaker.current_state == "open"
    received = provider.requests_received()
    assert received == settings.PROVIDER_BREAKER_FAIL_MAX * clients.ATTEMPTS

    started = time.perf_counter()
    payment = services.payment_charge(payment_id=payment.id)
    elapsed = time.perf_counter() - started

    assert elapsed < 0.2, f"an open circuit must fail fast, took {elapsed:.3f}s"
    assert provider.requests_received() == received  # the provider was not even asked
    assert payment.status == Status.PENDING
    assert "circuit open" in payment.last_error
    assert payment.attempts == settings.PROVIDER_BREAKER_FAIL_MAX + 1


def test_the_breaker_closes_again_once_the_provider_recovers(provider, settings):
    settings.PROVIDER_BREAKER_RESET_SECONDS = 1
    provider.set_faults(error_rate=1)
    payment = create_payment()
    for _ in range(settings.PROVIDER_BREAKER_FAIL_MAX):
        services.payment_charge(payment_id=payment.id)
    assert clients.provider().breaker.current_state == "open"
    provider.clear_faults()

    captured = wait_until(
        lambda: services.payment_charge(payment_id=payment.id).status == Status.CAPTURED,
        timeout=5,
        interval=0.2,
        message="the half-open trial call to capture",
    )

    assert captured
    assert clients.provider().breaker.current_state == "closed"
    assert provider.ledger()["charges"] == 1


def test_a_timed_out_charge_that_landed_is_captured_once_on_retry(provider):
    """The first request times out (latency > timeout) but the provider completes it; the retry,
    under the same key, gets that charge instead of making a second one."""
    provider.set_faults(latency_ms=1000)  # PROVIDER_TIMEOUT_SECONDS is 0.3 in tests
    payment = services.payment_charge(payment_id=create_payment().id)

    assert payment.status == Status.PENDING
    assert payment.charge_in_doubt is True
    wait_until(lambda: provider.ledger()["charges"] == 1, timeout=5, message="the slow charge to land")
    provider.clear_faults()

    payment = services.payment_charge(payment_id=payment.id)

    assert payment.status == Status.CAPTURED
    charges = provider.charges_for(payment.order_id)
    assert [charge["id"] for charge in charges] == [payment.provider_charge_id]
    assert provider.ledger()["charges"] == 1
    assert len(events("payment.succeeded")) == 1


def test_an_expired_reservation_voids_without_calling_the_provider(provider):
    payment = create_payment()
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    payment = services.payment_charge(payment_id=payment.id)

    assert (payment.status, payment.failure_reason, payment.void_requested) == (
        Status.VOIDED,
        "payment_timeout",
        True,
    )
    assert provider.requests_received() == 0
    assert events("payment.failed") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "reason": "payment_timeout",
            "message": services.TIMEOUT_MESSAGE,
        }
    ]


# Races with the saga


def test_a_capture_racing_the_reservation_expiry_is_refunded_at_once(provider, monkeypatch, committed):
    payment = create_payment()
    expire_mid_charge(payment, monkeypatch, committed)

    payment = services.payment_charge(payment_id=payment.id)

    assert payment.status == Status.VOIDED
    assert payment.provider_charge_id and payment.provider_refund_id
    ledger = provider.ledger()
    assert (ledger["charges"], ledger["refunds"]) == (1, 1)
    assert ledger["refunded_total"] == ledger["captured_total"] == "12.50"
    assert published_types() == ["payment.failed", "payment.refunded"]
    assert events("payment.failed")[0]["reason"] == "payment_timeout"


def test_a_charge_in_doubt_voided_later_is_looked_up_and_refunded(provider, tasks, committed):
    provider.set_faults(latency_ms=1000)
    payment = services.payment_charge(payment_id=create_payment().id)
    assert payment.charge_in_doubt is True

    deliver(expired_event(payment.order_id), committed)
    payment = refresh(payment)
    assert (payment.status, payment.refund_requested) == (Status.VOIDED, True)
    wait_until(lambda: provider.ledger()["charges"] == 1, timeout=5, message="the slow charge to land")
    provider.clear_faults()

    make_due(payment)
    with committed():
        services.payments_requeue_due()
    tasks.run_all()

    payment = refresh(payment)
    assert payment.status == Status.VOIDED
    assert payment.provider_refund_id
    assert provider.ledger()["refunded_total"] == provider.ledger()["captured_total"] == "12.50"
    assert [event["payment_id"] for event in events("payment.refunded")] == [str(payment.id)]
    assert not events("payment.succeeded")


def test_the_lookup_waits_while_the_charge_is_still_in_flight(provider):
    provider.set_faults(latency_ms=1500)
    payment = services.payment_charge(payment_id=create_payment().id)
    services.payment_expire_reservation(order_id=payment.order_id)
    provider.set_faults(latency_ms=0)  # keeps the in-flight request going; the lookup itself is quick

    payment = services.payment_refund(payment_id=payment.id)

    assert payment.refund_requested is True
    assert payment.provider_charge_id == ""
    assert "in-progress" in payment.last_error or "still being processed" in payment.last_error
    assert payment.next_attempt_at > timezone.now()


# Refunds


def test_a_refund_request_then_refund_returns_the_money_once(provider, tasks, committed):
    payment = captured_payment()

    with committed():
        services.payment_request_refund(payment_id=payment.id)
    assert tasks.names() == [("payments.payment_refund", (str(payment.id),))]
    tasks.run_all()
    services.payment_refund(payment_id=payment.id)  # again: nothing owed any more

    payment = refresh(payment)
    assert payment.status == Status.REFUNDED
    assert provider.ledger()["refunds"] == 1
    assert provider.refunds_of(payment.provider_charge_id)[0]["id"] == payment.provider_refund_id
    assert events("payment.refunded") == [
        {
            "order_id": str(payment.order_id),
            "payment_id": str(payment.id),
            "amount": "12.50",
            "currency": "USD",
            "user_id": str(payment.user_id),
            "customer_email": "carla@example.com",
        }
    ]


def test_only_a_captured_payment_can_be_refunded():
    payment = create_payment()

    with pytest.raises(Conflict) as refused:
        services.payment_request_refund(payment_id=payment.id)

    assert refused.value.code == "payment_not_captured"
    assert refresh(payment).refund_requested is False


def test_a_refund_waits_out_an_unavailable_provider(provider, tasks, committed):
    payment = captured_payment()
    provider.set_faults(error_rate=1)

    with committed():
        services.payment_request_refund(payment_id=payment.id)
    tasks.run_all()

    payment = refresh(payment)
    assert payment.status == Status.CAPTURED
    assert payment.refund_requested is True
    assert payment.next_attempt_at > timezone.now()
    provider.clear_faults()
    make_due(payment)
    with committed():
        assert services.payments_requeue_due() == 1
    assert tasks.names() == [("payments.payment_refund", (str(payment.id),))]
    tasks.run_all()

    assert refresh(payment).status == Status.REFUNDED
    assert provider.ledger()["refunds"] == 1
    assert len(events("payment.refunded")) == 1


# The sweep


def test_the_sweep_queues_due_work_once_and_leaves_the_rest(tasks, committed):
    due_charge = create_payment()
    not_due = create_payment()
    finished = create_payment()
    make_due(due_charge)
    Payment.objects.filter(pk=finished.pk).update(
        status=Status.CAPTURED, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    tasks.queued.clear()

    with committed():
        queued = services.payments_requeue_due()
    with committed():
        queued_again = services.payments_requeue_due()

    assert (queued, queued_again) == (1, 0)
    assert tasks.names() == [("payments.payment_charge", (str(due_charge.id),))]
    assert refresh(due_charge).next_attempt_at > timezone.now()  # claimed while its task runs
    assert refresh(not_due).next_attempt_at > timezone.now()
    assert refresh(finished).next_attempt_at is None


# Concurrency: real threads and connections


@pytest.mark.django_db(transaction=True)
def test_concurrent_charge_tasks_take_the_money_once(provider):
    payment = create_payment()
    provider.set_faults(latency_ms=300)
    start = threading.Barrier(4)
    errors: list = []

    def charge():
        try:
            start.wait()
            services.payment_charge(payment_id=payment.id)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=charge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    wait_until(lambda: provider.ledger()["charges"] == 1, timeout=5, message="the charge")
    provider.clear_faults()
    payment = services.payment_charge(payment_id=payment.id)  # whoever got 409 settles now
    assert payment.status == Status.CAPTURED
    assert provider.ledger()["charges"] == 1
    assert len(provider.charges_for(payment.order_id)) == 1
    assert len(events("payment.succeeded")) == 1

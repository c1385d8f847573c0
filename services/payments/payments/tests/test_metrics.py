"""payments_total{outcome}: each outcome counted once, after its transaction commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from payments import services
from payments.models import Payment
from payments.tests.helpers import captured_payment, create_payment

pytestmark = pytest.mark.django_db

OUTCOMES = ("captured", "declined", "unavailable", "refunded", "refused_expired")


def outcomes() -> dict[str, float]:
    value = REGISTRY.get_sample_value
    return {outcome: value("payments_total", {"outcome": outcome}) or 0.0 for outcome in OUTCOMES}


def moved(before: dict[str, float]) -> dict[str, float]:
    """The outcomes whose counter changed since `before`, and by how much."""
    now = outcomes()
    changes = {outcome: now[outcome] - before[outcome] for outcome in OUTCOMES}
    return {outcome: change for outcome, change in changes.items() if change}


def test_a_capture_is_counted_once(provider, django_capture_on_commit_callbacks):
    payment = create_payment()
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_charge(payment_id=payment.id)
        services.payment_charge(payment_id=payment.id)  # a duplicate task: nothing happens

    assert moved(before) == {"captured": 1}


def test_a_decline_is_counted(provider, django_capture_on_commit_callbacks):
    payment = create_payment(token="tok_chargeDeclined")
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_charge(payment_id=payment.id)

    assert moved(before) == {"declined": 1}


def test_an_unavailable_provider_is_counted_when_the_payment_gives_up_not_per_attempt(
    provider, django_capture_on_commit_callbacks
):
    provider.set_faults(error_rate=1)
    payment = create_payment()
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_charge(payment_id=payment.id)  # before the deadline: retried later
    assert moved(before) == {}

    Payment.objects.filter(pk=payment.pk).update(
        deadline_at=timezone.now() - timedelta(seconds=1), next_attempt_at=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_charge(payment_id=payment.id)
    assert moved(before) == {"unavailable": 1}


def test_an_expired_reservation_is_counted_as_refused(provider, django_capture_on_commit_callbacks):
    payment = create_payment()
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_charge(payment_id=payment.id)

    assert moved(before) == {"refused_expired": 1}


def test_a_refund_is_counted_once(provider, django_capture_on_commit_callbacks):
    payment = captured_payment()
    Payment.objects.filter(pk=payment.pk).update(refund_requested=True)
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        services.payment_refund(payment_id=payment.id)
        services.payment_refund(payment_id=payment.id)  # nothing owed any more

    assert moved(before) == {"refunded": 1}


def test_nothing_is_counted_when_the_transaction_rolls_back(provider, django_capture_on_commit_callbacks):
    payment = create_payment(token="tok_chargeDeclined")
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.payment_charge(payment_id=payment.id)

    assert callbacks, "the count waits for the commit"
    assert moved(before) == {}  # the test's transaction never commits: the callbacks are dropped

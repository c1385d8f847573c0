"""The payment ledger: rows rebuilt from the streams equal the rows the live path wrote, for payments
driven through every path against the real sandbox; the rebuild command; the backfill of old rows."""

from __future__ import annotations

import importlib
import uuid
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from payments import ledger, selectors, services
from payments.models import Payment, PaymentEvent
from payments.tests.helpers import (
    STAFF_ID,
    USER_ID,
    cancelled_event,
    captured_payment,
    create_payment,
    deliver,
    expire_mid_charge,
    expired_event,
    reserved_event,
)
from shared.testing import wait_until

pytestmark = pytest.mark.django_db

Status = Payment.Status


def rows() -> dict:
    return {payment.id: ledger.values_of(ledger.state_of(payment)) for payment in Payment.objects.all()}


def stream_types(payment) -> list[str]:
    return list(selectors.payment_stream(payment_id=payment.id).values_list("type", flat=True))


# Driving payments through every path the service has, as the saga and the provider make them happen.


def declined():
    return services.payment_charge(payment_id=create_payment(token="tok_chargeDeclined").id)


def refunded_by_an_operator(tasks, committed):
    payment = captured_payment()
    with committed():
        services.payment_request_refund(payment_id=payment.id, requested_by=uuid.UUID(STAFF_ID))
    tasks.run_all()
    return payment


def cancelled_after_capture(tasks, committed):
    payment = captured_payment()
    deliver(cancelled_event(payment.order_id), committed)
    tasks.run_all()
    return payment


def cancelled_while_pending(committed):
    payment = create_payment()
    deliver(cancelled_event(payment.order_id, previous_status="awaiting_payment"), committed)
    return payment


def expired_while_pending(committed):
    payment = create_payment()
    deliver(expired_event(payment.order_id), committed)
    return payment


def cancelled_before_its_reservation(committed):
    order_id = uuid.uuid4()
    deliver(cancelled_event(order_id, previous_status="pending"), committed)
    deliver(reserved_event(order_id), committed)  # late: charges nothing
    return Payment.objects.get(order_id=order_id)


def captured_after_retries(provider, tasks, committed):
    provider.set_faults(failure_budget=3)  # the whole first attempt fails (500s): retried with backoff
    payment = services.payment_charge(payment_id=create_payment().id)
    provider.clear_faults()
    with committed():  # the sweep queues the retry once its backoff (0.5 s) is over
        wait_until(lambda: services.payments_requeue_due() == 1, timeout=5, message="the retry to be due")
    tasks.run_all()
    return payment


def failed_past_the_deadline_and_settled(provider, settings, reset_breaker, tasks, committed):
    settings.PAYMENT_DEADLINE_SECONDS = 0.5
    provider.set_faults(error_rate=1)
    payment = services.payment_charge(payment_id=create_payment().id)  # unavailable: retry scheduled
    wait_until(lambda: timezone.now() > payment.deadline_at, timeout=5, message="the deadline")
    reset_breaker()
    payment = services.payment_charge(payment_id=payment.id)  # past the deadline: failed, in doubt
    provider.clear_faults()
    services.payment_refund(payment_id=payment.id)  # the lookup finds nothing taken: settled
    return payment


def captured_after_the_expiry(monkeypatch, committed):
    payment = create_payment()
    with monkeypatch.context() as patch:
        expire_mid_charge(payment, patch, committed)
        services.payment_charge(payment_id=payment.id)  # captured after voiding: refunded at once
    return payment


def in_doubt_then_found_and_refunded(provider, committed):
    provider.set_faults(latency_ms=1000)  # the charge times out here but lands at the provider
    payment = services.payment_charge(payment_id=create_payment().id)
    deliver(expired_event(payment.order_id), committed)
    wait_until(lambda: provider.charges_for(payment.order_id), timeout=5, message="the slow charge")
    provider.clear_faults()
    services.payment_refund(payment_id=payment.id)
    return payment


def refund_retried_then_done(provider, tasks, committed):
    payment = captured_payment()
    provider.set_faults(error_rate=1)
    with committed():
        services.payment_request_refund(payment_id=payment.id)
    tasks.run_all()  # unavailable: retried later
    provider.clear_faults()
    services.payment_refund(payment_id=payment.id)
    return payment


def refund_refused(provider):
    payment = captured_payment()
    # Someone refunded the charge at the provider under another key: ours is refused (400).
    elsewhere = provider._call(
        "POST",
        "/v1/refunds",
        json={"charge": payment.provider_charge_id, "amount": "12.50"},
        headers={"Idempotency-Key": f"elsewhere-{uuid.uuid4()}"},
    )
    assert elsewhere.status_code == 200, elsewhere.text
    services.payment_request_refund(payment_id=payment.id)
    services.payment_refund(payment_id=payment.id)
    return payment


def test_rows_rebuilt_from_the_streams_are_the_rows_the_live_path_wrote(
    provider, settings, reset_breaker, monkeypatch, tasks, committed
):
    paths = {
        "captured": captured_payment(),
        "declined": declined(),
        "refunded by an operator": refunded_by_an_operator(tasks, committed),
        "cancelled after capture": cancelled_after_capture(tasks, committed),
        "cancelled while pending": cancelled_while_pending(committed),
        "expired while pending": expired_while_pending(committed),
        "cancelled before its reservation": cancelled_before_its_reservation(committed),
        "captured after retries": captured_after_retries(provider, tasks, committed),
        "failed past the deadline": failed_past_the_deadline_and_settled(
            provider, settings, reset_breaker, tasks, committed
        ),
        "captured after the expiry": captured_after_the_expiry(monkeypatch, committed),
        "in doubt, found, refunded": in_doubt_then_found_and_refunded(provider, committed),
        "refund retried": refund_retried_then_done(provider, tasks, committed),
        "refund refused": refund_refused(provider),
    }
    statuses = {name: Payment.objects.get(pk=payment.pk).status for name, payment in paths.items()}
    assert statuses == {
        "captured": Status.CAPTURED,
        "declined": Status.FAILED,
        "refunded by an operator": Status.REFUNDED,
        "cancelled after capture": Status.REFUNDED,
        "cancelled while pending": Status.VOIDED,
        "expired while pending": Status.VOIDED,
        "cancelled before its reservation": Status.VOIDED,
        "captured after retries": Status.CAPTURED,
        "failed past the deadline": Status.FAILED,
        "captured after the expiry": Status.VOIDED,
        "in doubt, found, refunded": Status.VOIDED,
        "refund retried": Status.REFUNDED,
        "refund refused": Status.CAPTURED,
    }
    live = rows()
    every_change_type = set(PaymentEvent.objects.values_list("type", flat=True))

    assert services.payment_projections_rebuild(check=True) == []
    Payment.objects.all().delete()  # the rows are a projection: losing them loses nothing
    differences = services.payment_projections_rebuild()

    assert {difference.payment_id for difference in differences if difference.row_missing} == set(live)
    assert rows() == live
    assert services.payment_projections_rebuild(check=True) == []
    # The paths above went through (nearly) every kind of event the ledger has.
    assert ledger.EVENT_TYPES - every_change_type == {
        ledger.BACKFILLED,  # only migration 0004 writes it (test_backfill_...)
        # Answers to racing attempts, and the sweep finding nothing owed: folded in the tests below.
        ledger.CHARGE_SUCCEEDED_AGAIN,
        ledger.LATE_CHARGE_DECLINED,
        ledger.LATE_CHARGE_UNAVAILABLE,
        ledger.DUE_WORK_CLEARED,
    }


def test_a_stream_tells_a_payments_story_in_order(provider, tasks, committed):
    payment = refunded_by_an_operator(tasks, committed)

    events = list(selectors.payment_stream(payment_id=payment.id))

    assert [(event.version, event.type) for event in events] == [
        (1, ledger.REQUESTED),
        (2, ledger.CHARGE_ATTEMPTED),
        (3, ledger.CHARGE_SUCCEEDED),
        (4, ledger.REFUND_REQUESTED),
        (5, ledger.REFUND_ATTEMPTED),
        (6, ledger.REFUND_SUCCEEDED),
    ]
    payment.refresh_from_db()
    assert payment.version == 6
    assert (payment.created_at, payment.updated_at) == (events[0].occurred_at, events[-1].occurred_at)
    assert events[2].data == {"charge_id": payment.provider_charge_id}
    assert events[3].data["requested_by"] == STAFF_ID
    assert events[5].data == {"refund_id": payment.provider_refund_id, "status": "refunded"}


# The command


def test_check_reports_a_row_that_differs_from_its_stream_and_writes_nothing(provider):
    payment = captured_payment()
    Payment.objects.filter(pk=payment.pk).update(status=Status.FAILED, attempts=7)

    with pytest.raises(CommandError, match="1 payments differ from their streams"):
        call_command("rebuild_payment_projections", "--check", stdout=(out := StringIO()))

    assert f"payment {payment.id}: " in out.getvalue()
    assert "status: row 'failed', stream 'captured'" in out.getvalue()
    assert "attempts: row 7, stream 1" in out.getvalue()
    assert Payment.objects.get(pk=payment.pk).status == Status.FAILED


def test_rebuild_restores_the_row_and_check_then_passes(provider):
    payment = captured_payment()
    untouched = create_payment()
    before = rows()
    Payment.objects.filter(pk=payment.pk).update(status=Status.FAILED, last_error="edited by hand")

    call_command("rebuild_payment_projections", "--payment", str(payment.id), stdout=(out := StringIO()))
    call_command("rebuild_payment_projections", "--check", stdout=(checked := StringIO()))

    assert "1 payment rows rebuilt from their streams." in out.getvalue()
    assert rows() == before
    assert rows()[untouched.id] == before[untouched.id]
    assert "Every payment row matches its stream." in checked.getvalue()


def test_a_row_without_a_stream_is_reported_and_left_alone():
    orphan = Payment.objects.create(order_id=uuid.uuid4(), user_id=USER_ID, amount="1.00")

    with pytest.raises(CommandError, match="1 payment rows have no stream"):
        call_command("rebuild_payment_projections", stdout=(out := StringIO()))

    assert f"payment {orphan.id}: no stream" in out.getvalue()
    assert Payment.objects.filter(pk=orphan.pk).exists()


def test_an_unknown_or_malformed_payment_id_is_a_clear_error():
    with pytest.raises(CommandError, match="No payment"):
        call_command("rebuild_payment_projections", "--payment", str(uuid.uuid4()))
    with pytest.raises(CommandError, match="is not a payment id"):
        call_command("rebuild_payment_projections", "--payment", "nope")


def test_a_stream_that_cannot_be_folded_is_a_clear_error(provider):
    payment = captured_payment()
    PaymentEvent.objects.create(  # written around the event store, which refuses unknown types
        payment_id=payment.id, version=4, type="charge_teleported", data={}, occurred_at=timezone.now()
    )

    with pytest.raises(CommandError, match="unknown event type 'charge_teleported'"):
        call_command("rebuild_payment_projections", "--check")


# The backfill of the rows that existed before the ledger (migration 0004)


def test_backfill_gives_each_old_row_a_stream_that_folds_back_to_it_exactly():
    backfill = importlib.import_module("payments.migrations.0004_backfill_ledger").backfill_streams
    now = timezone.now()
    old = Payment.objects.create(  # as the service wrote rows before the ledger, with no stream
        order_id=uuid.uuid4(),
        reservation_id="res-1",
        user_id=USER_ID,
        customer_email="carla@example.com",
        amount="12.50",
        payment_token="tok_visa",
        status=Status.REFUNDED,
        last_error="",
        provider_charge_id="ch_1",
        provider_refund_id="re_1",
        attempts=2,
        deadline_at=now + timedelta(seconds=30),
        expires_at=now + timedelta(seconds=300),
        void_requested=True,
        refund_requested=True,
        refund_requested_by=STAFF_ID,
        created_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(minutes=1),
    )
    old.refresh_from_db()
    before = ledger.values_of(ledger.state_of(old))
    models = {"Payment": Payment, "PaymentEvent": PaymentEvent}
    migration_apps = SimpleNamespace(get_model=lambda app_label, name: models[name])
    editor = SimpleNamespace(connection=connection)

    backfill(migration_apps, editor)
    backfill(migration_apps, editor)  # again: nothing more

    [event] = selectors.payment_stream(payment_id=old.id)
    assert (event.version, event.type, event.occurred_at) == (1, ledger.BACKFILLED, before["updated_at"])
    assert "payment_token" in event.data
    assert ledger.values_of(ledger.fold(old.id, [event])) == {**before, "version": 1}
    assert services.payment_projections_rebuild(check=True) == []


# The fold itself (pure: events in, row values out)


def event(version: int, event_type: str, **data) -> PaymentEvent:
    return PaymentEvent(version=version, type=event_type, data=data, occurred_at=timezone.now())


def requested(**overrides) -> PaymentEvent:
    now = timezone.now()
    data = {
        "order_id": str(uuid.uuid4()),
        "reservation_id": "res-1",
        "user_id": USER_ID,
        "customer_email": "carla@example.com",
        "amount": "12.50",
        "currency": "USD",
        "payment_token": "tok_visa",
        "deadline_at": (now + timedelta(seconds=30)).isoformat(),
        "expires_at": (now + timedelta(seconds=300)).isoformat(),
        "next_attempt_at": (now + timedelta(seconds=3)).isoformat(),
    }
    return event(1, ledger.REQUESTED, **{**data, **overrides})


def test_the_folded_state_has_exactly_the_fields_of_the_row():
    assert set(ledger.FIELDS) == {field.name for field in Payment._meta.fields}


def test_answers_to_racing_attempts_and_an_idle_sweep_fold_as_recorded():
    payment_id = uuid.uuid4()
    retry_at = timezone.now() + timedelta(seconds=1)
    stream = [
        requested(),
        event(2, ledger.CHARGE_ATTEMPTED, next_attempt_at=retry_at.isoformat()),
        event(3, ledger.CHARGE_SUCCEEDED, charge_id="ch_1"),
        event(4, ledger.CHARGE_SUCCEEDED_AGAIN, charge_id="ch_1"),
        event(5, ledger.LATE_CHARGE_UNAVAILABLE, last_error="", charge_in_doubt=False,
              refund_requested=False, next_attempt_at=retry_at.isoformat()),
        event(6, ledger.DUE_WORK_CLEARED),
    ]  # fmt: skip

    state = ledger.fold(payment_id, stream)

    assert (state.id, state.version, state.status, state.attempts) == (payment_id, 6, "captured", 1)
    assert (state.provider_charge_id, state.charge_in_doubt, state.next_attempt_at) == ("ch_1", False, None)
    assert (state.created_at, state.updated_at) == (stream[0].occurred_at, stream[-1].occurred_at)


def test_a_late_decline_settles_what_a_voided_payment_owed():
    now = timezone.now()
    stream = [
        requested(),
        event(2, ledger.CHARGE_ATTEMPTED, next_attempt_at=now.isoformat()),
        event(3, ledger.VOIDED, reason="", refund_requested=True, next_attempt_at=now.isoformat()),
        event(4, ledger.LATE_CHARGE_DECLINED, message="Your card was declined.", refund_requested=False,
              next_attempt_at=None),
    ]  # fmt: skip

    state = ledger.fold(uuid.uuid4(), stream)

    assert (state.status, state.void_requested, state.refund_requested) == ("voided", True, False)
    assert (state.charge_in_doubt, state.last_error) == (False, "Your card was declined.")


@pytest.mark.parametrize(
    ("stream", "complaint"),
    [
        ([], "has no events"),
        ([event(1, ledger.CHARGE_ATTEMPTED, next_attempt_at=None)], "not a creation"),
        ([requested(), event(3, ledger.DUE_WORK_CLEARED)], "event version 3 where 2 was due"),
        ([requested(), event(2, "charge_teleported")], "unknown event type"),
        ([requested(), event(2, ledger.REQUESTED, **requested().data)], "after the stream began"),
    ],
)
def test_a_stream_that_cannot_be_folded_says_why(stream, complaint):
    with pytest.raises(ledger.LedgerError, match=complaint):
        ledger.fold(uuid.uuid4(), stream)

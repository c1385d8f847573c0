"""The transactional outbox against the real broker and a real consuming worker."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from shared.messaging import relay
from shared.messaging.events import new_event
from shared.messaging.models import InboxMessage, OutboxEvent
from shared.observability import context
from shared.testing import wait_until
from tests.ledger.models import Account, Credit
from tests.ledger.services import account_credit

pytestmark = pytest.mark.django_db(transaction=True)


def test_event_of_a_rolled_back_transaction_is_never_published(observe, worker):
    observer = observe(["ledger.credited"])

    with pytest.raises(RuntimeError):
        account_credit(account="rollback", amount=5, fail_after_publish=True)
    relay.sweep()
    marker = account_credit(account="after-the-rollback", amount=1)

    # Anything the rollback or the sweep had published would have arrived before the marker.
    assert observer.wait_for(1) == [marker.id]
    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [uuid.UUID(marker.id)]
    # Handled before the test ends, so that its effect does not land in the next test's database.
    wait_until(lambda: Credit.objects.filter(event_id=marker.id).exists(), message="the marker handled")
    assert not Account.objects.filter(name="rollback").exists()


def test_committed_event_is_published_once_and_handled_once(observe, worker):
    observer = observe(["ledger.credited"])

    with context.bound(correlation_id="corr-committed"):
        event = account_credit(account="alice", amount=10)

    assert observer.wait_for(1) == [event.id]
    row = OutboxEvent.objects.get(id=event.id)
    assert row.published_at is not None
    assert relay.sweep() == 0  # nothing left for the sweep to publish again
    credit = wait_until(lambda: Credit.objects.filter(event_id=event.id).first(), message="credit")
    assert (credit.account, credit.amount) == ("alice", 10)
    assert credit.correlation_id == "corr-committed"  # carried in the envelope into the handler
    marker = account_credit(account="after-alice", amount=1)
    # A second publish of the first event, or a second effect, would have come before the marker's.
    assert observer.wait_for(2) == [event.id, marker.id]
    wait_until(lambda: Credit.objects.filter(event_id=marker.id).exists(), message="the marker handled")
    assert sorted(Credit.objects.values_list("account", flat=True)) == ["after-alice", "alice"]


def test_envelope_has_the_contract_fields(observe):
    observer = observe(["ledger.credited"])
    event = account_credit(account="shape", amount=1)
    observer.wait_for(1)
    headers, body = observer.messages[0]
    envelope = body[0][0]
    assert set(envelope) == {"id", "type", "version", "occurred_at", "source", "correlation_id",
                             "causation_id", "data"}  # fmt: skip
    assert envelope["type"] == "ledger.credited" and envelope["version"] == 1
    assert envelope["source"] == "shared_tests"
    assert envelope["data"] == {"account": "shape", "amount": 1}
    assert headers["task"] == "events.deliver" and headers["id"] == event.id


def test_relay_dying_between_publish_and_mark_republishes_and_inbox_keeps_effect_single(
    observe, worker, monkeypatch
):
    observer = observe(["ledger.credited"])

    def die(ids):
        raise RuntimeError("relay process killed before marking the row")

    monkeypatch.setattr(relay, "mark_published", die)
    event = account_credit(account="bob", amount=7)  # the fast path publishes, then "dies"
    assert observer.wait_for(1)[0] == event.id
    monkeypatch.undo()

    # The row was left pending, so a sweep (this one, or the worker's periodic one) publishes it again.
    relay.sweep()
    assert observer.wait_for(2)[:2] == [event.id, event.id]
    wait_until(lambda: OutboxEvent.objects.get(id=event.id).published_at, message="row marked published")
    marker = account_credit(account="marker", amount=1)  # queued behind the duplicate
    wait_until(lambda: Credit.objects.filter(event_id=marker.id).exists(), message="marker handled")

    assert Credit.objects.filter(event_id=event.id).count() == 1
    assert InboxMessage.objects.filter(event_id=event.id).count() == 1
    assert worker.output_contains("duplicate event skipped")


def test_the_same_event_delivered_three_times_takes_effect_once(worker):
    event = account_credit(account="carol", amount=3)
    wait_until(lambda: Credit.objects.filter(event_id=event.id).exists(), message="first delivery")
    envelope = OutboxEvent.objects.get(id=event.id).envelope
    for _ in range(2):
        relay._publish_one(
            relay._producer(relay.SWEEP_TIMEOUT_SECONDS), envelope, relay.SWEEP_TIMEOUT_SECONDS
        )

    marker = account_credit(account="marker", amount=1)
    wait_until(lambda: Credit.objects.filter(event_id=marker.id).exists(), message="marker handled")
    assert Credit.objects.filter(event_id=event.id).count() == 1
    assert Credit.objects.filter(account="carol").count() == 1


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def _rabbitmqctl_eval(expression: str) -> str:
    answer = subprocess.run(
        ["rabbitmqctl", "-q", "eval", expression], check=True, capture_output=True, text=True, timeout=60
    )
    return answer.stdout.strip()


def test_events_wait_while_the_broker_is_stopped_and_flow_when_it_returns(worker):
    _rabbitmqctl("stop_app")
    try:
        started = time.monotonic()
        event = account_credit(account="dave", amount=4)
        # One refused connect and one retry on a fresh connection, no pause between attempts: a request
        # that commits while the broker is down is not held (it waited 4 s on kombu's reconnect pauses).
        assert time.monotonic() - started < 1, "a broker outage must not hold the business transaction"
        row = OutboxEvent.objects.get(id=event.id)
        assert row.published_at is None
        assert row.attempts == 1 and row.last_error  # the fast path tried and recorded why it failed
        assert relay.sweep() == 0
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")

    # No one intervenes: the worker's periodic sweep publishes, and the worker itself consumes it.
    wait_until(
        lambda: Credit.objects.filter(event_id=event.id).exists(),
        timeout=60,
        message="event after broker returned",
    )
    assert OutboxEvent.objects.get(id=event.id).published_at is not None
    assert Credit.objects.filter(event_id=event.id).count() == 1


def test_a_broker_that_stops_confirming_holds_the_request_for_the_confirm_timeout_only(worker):
    """A memory alarm makes RabbitMQ stop reading from publishers: the confirm never comes. Without a
    limit the request that committed the event waited for it forever (a stalled link does the same)."""
    account_credit(account="warm-up", amount=1)  # the fast path's connection is open before the alarm
    previous = _rabbitmqctl_eval("vm_memory_monitor:get_vm_memory_high_watermark().")
    _rabbitmqctl("set_vm_memory_high_watermark", "0")
    try:
        started = time.monotonic()
        event = account_credit(account="erin", amount=3)
        assert time.monotonic() - started < relay.FAST_PATH_TIMEOUT_SECONDS + 1
        row = OutboxEvent.objects.get(id=event.id)
        assert row.published_at is None and row.last_error  # gave up, left to the sweep, said why
    finally:
        _rabbitmqctl("set_vm_memory_high_watermark", previous)

    credit = wait_until(
        lambda: Credit.objects.filter(event_id=event.id).first(), timeout=60, message="event after the alarm"
    )  # fmt: skip
    assert credit.account == "erin"
    # The relay marks the row after the broker's confirm, which may come after the worker handled it.
    wait_until(lambda: OutboxEvent.objects.get(id=event.id).published_at, message="the row marked published")


def test_publish_event_outside_a_transaction_is_refused():
    from shared.messaging.events import publish_event

    with pytest.raises(RuntimeError, match=r"inside transaction.atomic"):
        publish_event("ledger.credited", {"account": "x", "amount": 1})
    assert OutboxEvent.objects.count() == 0


def test_sweep_publishes_rows_the_fast_path_never_saw(observe):
    """A process killed right after commit leaves rows behind: the sweep publishes them in order."""
    observer = observe(["ledger.credited"])
    ids = []
    for amount in (1, 2, 3):
        envelope = new_event("ledger.credited", {"account": "orphan", "amount": amount}).as_envelope()
        OutboxEvent.objects.create(id=envelope["id"], event_type="ledger.credited", envelope=envelope)
        ids.append(envelope["id"])

    assert relay.sweep() == 3
    assert observer.wait_for(3) == ids
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0

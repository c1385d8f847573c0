"""Appending to a stream: the expected version decides, the database arbitrates a real race between two
connections, and no event is ever changed or removed (model, queryset, raw SQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from payments import event_store, ledger, selectors
from payments.event_store import StreamConcurrencyError
from payments.models import AppendOnlyError, PaymentEvent
from payments.tests.helpers import create_payment
from shared.testing import wait_until

pytestmark = pytest.mark.django_db

CLEARED = (ledger.DUE_WORK_CLEARED, {})


def versions(payment) -> list[tuple[int, str]]:
    return list(selectors.payment_stream(payment_id=payment.id).values_list("version", "type"))


def append(payment, expected_version: int, *events):
    return event_store.append(
        payment_id=payment.id,
        expected_version=expected_version,
        events=events or [CLEARED],
        at=timezone.now(),
    )


# The expected version


def test_an_append_at_the_streams_version_lands_at_the_next_ones():
    payment = create_payment()  # version 1: requested

    appended = append(payment, 1, CLEARED, (ledger.DUE_WORK_QUEUED, {"next_attempt_at": None}))

    assert [event.version for event in appended] == [2, 3]
    assert versions(payment) == [(1, "requested"), (2, "due_work_cleared"), (3, "due_work_queued")]


@pytest.mark.parametrize("expected_version", [0, 2, 5], ids=["stale", "one ahead", "far ahead"])
def test_an_append_at_any_other_version_is_refused_and_the_transaction_goes_on(expected_version):
    payment = create_payment()

    with pytest.raises(StreamConcurrencyError, match=f"not at version {expected_version}") as refused:
        append(payment, expected_version)

    assert refused.value.code == "stream_version_conflict"
    assert versions(payment) == [(1, "requested")]  # still readable: the refusal left a savepoint only


def test_what_is_not_a_ledger_event_is_refused_before_anything_is_written():
    payment = create_payment()

    with pytest.raises(ValueError, match="not a payment ledger event type"):
        append(payment, 1, ("payment_teleported", {}))
    with pytest.raises(TypeError):
        append(payment, 1, (ledger.DUE_WORK_QUEUED, {"next_attempt_at": timezone.now()}))  # not encoded

    assert versions(payment) == [(1, "requested")]


# Two real connections racing for the same version


def _append_in_thread(payment, outcome: dict, name: str, *, ready=None, before_commit=None):
    """A thread with its own connection appending at version 1; `outcome[name]` says how it went."""

    def run():
        try:
            connection.ensure_connection()
            outcome[f"{name}_pid"] = connection.connection.info.backend_pid
            if ready is not None:
                ready()
            with transaction.atomic():
                append(payment, 1, (ledger.DUE_WORK_QUEUED, {"next_attempt_at": None, "by": name}))
                if before_commit is not None:
                    before_commit()
            outcome[name] = "appended"
        except Exception as exc:  # the assertions below say which
            outcome[name] = exc
        finally:
            connection.close()

    return threading.Thread(target=run)


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_an_append_racing_an_uncommitted_one_at_the_same_version_loses_when_that_commits():
    payment = create_payment()
    first_appended, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def hold_open():
        first_appended.set()
        assert release.wait(10)

    first = _append_in_thread(payment, outcome, "first", before_commit=hold_open)
    second = _append_in_thread(payment, outcome, "second", ready=lambda: first_appended.wait(10))
    first.start()
    second.start()
    # Version 2 is inserted but not committed: the second insert of version 2 waits on the unique index.
    try:
        wait_until(lambda: "second_pid" in outcome and _waiting_on_a_lock(outcome["second_pid"]), timeout=10,
                   message="the second append to wait for the first")  # fmt: skip
    finally:
        release.set()
    first.join(10)
    second.join(10)

    assert outcome["first"] == "appended"
    assert isinstance(outcome["second"], StreamConcurrencyError), outcome["second"]
    assert versions(payment) == [(1, "requested"), (2, "due_work_queued")]
    assert PaymentEvent.objects.get(payment_id=payment.id, version=2).data["by"] == "first"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("repeat", range(3))
def test_two_appends_started_together_at_the_same_version_cannot_both_win(repeat):
    payment = create_payment()
    start = threading.Barrier(2)
    outcome: dict = {}
    threads = [
        _append_in_thread(payment, outcome, name, ready=lambda: start.wait(10)) for name in ("one", "two")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    results = [outcome["one"], outcome["two"]]
    assert results.count("appended") == 1, results
    assert sum(isinstance(result, StreamConcurrencyError) for result in results) == 1, results
    assert PaymentEvent.objects.filter(payment_id=payment.id, version=2).count() == 1
    assert [version for version, _ in versions(payment)] == [1, 2]


# Append-only


def test_an_event_cannot_be_changed_or_removed_through_the_model():
    payment = create_payment()
    event = PaymentEvent.objects.get(payment_id=payment.id)

    event.type = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        PaymentEvent.objects.filter(payment_id=payment.id).update(type="rewritten")
    with pytest.raises(AppendOnlyError):
        PaymentEvent.objects.filter(payment_id=payment.id).delete()

    assert versions(payment) == [(1, "requested")]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE payments_paymentevent SET type = 'rewritten'", "DELETE FROM payments_paymentevent"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_or_remove_an_event(statement):
    payment = create_payment()

    refused = pytest.raises(DatabaseError, match="Cannot update or delete rows")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert versions(payment) == [(1, "requested")]

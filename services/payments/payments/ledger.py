"""The payment ledger's fold: a payment's stream of events in, its Payment row's values out.

Pure: no database, no clock, no settings. An event records what happened and what was decided then
(the provider's answer, when the next attempt is due, whether money is owed back), so that folding an
old stream gives the row it gave at the time even after the rules in payments.services have changed.
The live path (payments.services) applies each appended event with `evolve`, and the rebuild command
folds whole streams with `fold`: the same function, so both give the same row (docs/payments-ledger.md).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

# The event types: facts in a payment's life, in past tense.
REQUESTED = "requested"  # inventory.reserved: a pending payment, its charge queued
VOIDED_BEFORE_RESERVATION = "voided_before_reservation"  # order.cancelled came first: a tombstone
VOIDED = "voided"  # a pending payment given up (order cancelled, reservation expired): never charged
CHARGE_ATTEMPTED = "charge_attempted"  # an attempt claimed the payment and is calling the provider
CHARGE_SUCCEEDED = "charge_succeeded"  # the provider took the money: captured
LATE_CHARGE_SUCCEEDED = "late_charge_succeeded"  # ...after the payment was given up: it goes back
CHARGE_SUCCEEDED_AGAIN = "charge_succeeded_again"  # a duplicate attempt learnt the charge once more
CHARGE_DECLINED = "charge_declined"  # the provider refused the card: failed (payment_declined)
LATE_CHARGE_DECLINED = "late_charge_declined"  # a refusal for a payment no longer pending
CHARGE_UNAVAILABLE = "charge_unavailable"  # no answer; retried with backoff before the deadline
CHARGE_DEADLINE_PASSED = "charge_deadline_passed"  # no answer past the deadline: failed (unavailable)
LATE_CHARGE_UNAVAILABLE = "late_charge_unavailable"  # no answer for a payment no longer pending
REFUND_REQUESTED = "refund_requested"  # money taken must go back (cancelled order, an operator)
REFUND_ATTEMPTED = "refund_attempted"  # a refund attempt claimed the payment
CHARGE_IN_DOUBT_FOUND = "charge_in_doubt_found"  # the provider's lookup found the charge: it is refunded
CHARGE_IN_DOUBT_NOT_FOUND = "charge_in_doubt_not_found"  # ...found nothing taken: nothing is owed
REFUND_SUCCEEDED = "refund_succeeded"  # the provider gave the money back
REFUND_UNAVAILABLE = "refund_unavailable"  # no answer to the refund; retried
REFUND_REFUSED = "refund_refused"  # the provider refused the refund: an operator has to look
DUE_WORK_QUEUED = "due_work_queued"  # the sweep queued a charge or refund whose time had come
DUE_WORK_CLEARED = "due_work_cleared"  # the sweep found nothing owed any more
BACKFILLED = "backfilled"  # the row as it was when the ledger was introduced (migration 0004)

PENDING, CAPTURED, FAILED, VOIDED_STATUS = "pending", "captured", "failed", "voided"


class LedgerEvent(Protocol):
    """One event of a stream, as stored (payments.models.PaymentEvent is one) and as folded."""

    type: str
    data: dict[str, Any]
    version: int
    occurred_at: datetime


@dataclass(frozen=True)
class PaymentState:
    """The values of a Payment row: field for field (tests/test_ledger.py keeps the two in step)."""

    id: uuid.UUID
    order_id: uuid.UUID
    reservation_id: str
    user_id: uuid.UUID
    customer_email: str
    amount: Decimal
    currency: str
    payment_token: str
    status: str
    failure_reason: str
    last_error: str
    provider_charge_id: str
    provider_refund_id: str
    attempts: int
    next_attempt_at: datetime | None
    deadline_at: datetime | None
    expires_at: datetime | None
    void_requested: bool
    charge_in_doubt: bool
    refund_requested: bool
    refund_requested_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


FIELDS = tuple(field.name for field in dataclasses.fields(PaymentState))


class LedgerError(ValueError):
    """A stream that cannot be folded: it does not start with a creation, or has an unknown event."""


# Encoding values into event data (JSON) and back.


def encode_time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def encode_amount(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"  # what the row's numeric(12, 2) keeps


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


# The fold


def fold(payment_id: uuid.UUID, events: Iterable[LedgerEvent]) -> PaymentState:
    """The row a whole stream gives, oldest event first."""
    state = None
    for event in events:
        state = evolve(state, event, payment_id=payment_id)
    if state is None:
        raise LedgerError(f"payment {payment_id} has no events")
    return state


def evolve(state: PaymentState | None, event: LedgerEvent, *, payment_id: uuid.UUID) -> PaymentState:
    """The row after one more event: what the event changes, its version and its time."""
    expected = 1 if state is None else state.version + 1
    if event.version != expected:
        raise LedgerError(f"payment {payment_id}: event version {event.version} where {expected} was due")
    if event.type in _CREATIONS:
        if state is not None:
            raise LedgerError(f"payment {payment_id}: {event.type} after the stream began")
        changes = _CREATIONS[event.type](event.data, event.occurred_at)
        return PaymentState(id=payment_id, version=event.version, updated_at=event.occurred_at, **changes)
    if state is None:
        raise LedgerError(f"payment {payment_id}: the stream begins with {event.type}, not a creation")
    apply = _CHANGES.get(event.type)
    if apply is None:
        raise LedgerError(f"payment {payment_id}: unknown event type {event.type!r}")
    changes = apply(state, event.data)
    return dataclasses.replace(state, version=event.version, updated_at=event.occurred_at, **changes)


# Creations: the first event of a stream.


def _requested(data: dict, at: datetime) -> dict:
    return {
        "order_id": uuid.UUID(data["order_id"]),
        "reservation_id": data["reservation_id"],
        "user_id": uuid.UUID(data["user_id"]),
        "customer_email": data["customer_email"],
        "amount": Decimal(data["amount"]),
        "currency": data["currency"],
        "payment_token": data["payment_token"],
        "status": PENDING,
        "failure_reason": "",
        "last_error": "",
        "provider_charge_id": "",
        "provider_refund_id": "",
        "attempts": 0,
        "next_attempt_at": _time(data["next_attempt_at"]),
        "deadline_at": _time(data["deadline_at"]),
        "expires_at": _time(data["expires_at"]),
        "void_requested": False,
        "charge_in_doubt": False,
        "refund_requested": False,
        "refund_requested_by": None,
        "created_at": at,
    }


def _voided_before_reservation(data: dict, at: datetime) -> dict:
    return {
        **_requested(
            {
                **data,
                "reservation_id": "",
                "amount": "0.00",
                "payment_token": "",
                "next_attempt_at": None,
                "deadline_at": None,
                "expires_at": None,
            },
            at,
        ),
        "status": VOIDED_STATUS,
        "void_requested": True,
    }


def _backfilled(data: dict, at: datetime) -> dict:
    """The whole row as migration 0004 found it (its `updated_at` is the event's time)."""
    return {
        **_requested(data, at),
        "status": data["status"],
        "failure_reason": data["failure_reason"],
        "last_error": data["last_error"],
        "provider_charge_id": data["provider_charge_id"],
        "provider_refund_id": data["provider_refund_id"],
        "attempts": data["attempts"],
        "void_requested": data["void_requested"],
        "charge_in_doubt": data["charge_in_doubt"],
        "refund_requested": data["refund_requested"],
        "refund_requested_by": _uuid(data["refund_requested_by"]),
        "created_at": _time(data["created_at"]),
    }


_CREATIONS: dict[str, Callable[[dict, datetime], dict]] = {
    REQUESTED: _requested,
    VOIDED_BEFORE_RESERVATION: _voided_before_reservation,
    BACKFILLED: _backfilled,
}


# Changes: every later event. Each returns the fields it sets; none reads the clock.


def _next(data: dict) -> dict:
    return {"next_attempt_at": _time(data["next_attempt_at"])}


def _owed(data: dict) -> dict:
    """Whether money is owed back and when its work is due, as the service decided."""
    return {"refund_requested": data["refund_requested"], **_next(data)}


_CHANGES: dict[str, Callable[[PaymentState, dict], dict]] = {
    VOIDED: lambda state, data: {
        "status": VOIDED_STATUS,
        "void_requested": True,
        "failure_reason": data["reason"],
        **_owed(data),
    },
    CHARGE_ATTEMPTED: lambda state, data: {
        "attempts": state.attempts + 1,
        "charge_in_doubt": True,  # until the answer is recorded the charge may land unseen
        **_next(data),
    },
    CHARGE_SUCCEEDED: lambda state, data: {
        "provider_charge_id": data["charge_id"],
        "charge_in_doubt": False,
        "status": CAPTURED,
        "next_attempt_at": None,
        "last_error": "",
    },
    LATE_CHARGE_SUCCEEDED: lambda state, data: {
        "provider_charge_id": data["charge_id"],
        "charge_in_doubt": False,
        "refund_requested": True,
        **_next(data),
    },
    CHARGE_SUCCEEDED_AGAIN: lambda state, data: {
        "provider_charge_id": data["charge_id"],
        "charge_in_doubt": False,
    },
    CHARGE_DECLINED: lambda state, data: {
        "charge_in_doubt": False,
        "last_error": data["message"],
        "status": FAILED,
        "failure_reason": "payment_declined",
        "next_attempt_at": None,
    },
    LATE_CHARGE_DECLINED: lambda state, data: {
        "charge_in_doubt": False,
        "last_error": data["message"],
        **_owed(data),
    },
    CHARGE_UNAVAILABLE: lambda state, data: {
        "charge_in_doubt": data["charge_in_doubt"],
        "last_error": data["message"],
        **_next(data),
    },
    CHARGE_DEADLINE_PASSED: lambda state, data: {
        "charge_in_doubt": data["charge_in_doubt"],
        "last_error": data["message"],
        "status": FAILED,
        "failure_reason": "payment_unavailable",
        **_owed(data),
    },
    LATE_CHARGE_UNAVAILABLE: lambda state, data: {
        "charge_in_doubt": data["charge_in_doubt"],
        "last_error": data["last_error"],
        **_owed(data),
    },
    REFUND_REQUESTED: lambda state, data: {
        "refund_requested": True,
        "refund_requested_by": _uuid(data["requested_by"]),
        "void_requested": data["void_requested"],
        **_next(data),
    },
    REFUND_ATTEMPTED: lambda state, data: _next(data),
    CHARGE_IN_DOUBT_FOUND: lambda state, data: {
        "charge_in_doubt": False,
        "provider_charge_id": data["charge_id"],
    },
    CHARGE_IN_DOUBT_NOT_FOUND: lambda state, data: {
        "charge_in_doubt": False,
        "refund_requested": False,
        "next_attempt_at": None,
    },
    REFUND_SUCCEEDED: lambda state, data: {
        "provider_refund_id": data["refund_id"],
        "status": data["status"],
        "next_attempt_at": None,
        "last_error": "",
    },
    REFUND_UNAVAILABLE: lambda state, data: {"last_error": data["message"], **_next(data)},
    REFUND_REFUSED: lambda state, data: {"last_error": data["message"], "next_attempt_at": None},
    DUE_WORK_QUEUED: lambda state, data: _next(data),
    DUE_WORK_CLEARED: lambda state, data: {"next_attempt_at": None},
}

EVENT_TYPES = frozenset(_CREATIONS) | frozenset(_CHANGES)


def state_of(row: Any) -> PaymentState:
    """The state a Payment row holds (any object with the fields as attributes)."""
    return PaymentState(**{name: getattr(row, name) for name in FIELDS})


def values_of(state: PaymentState) -> dict[str, Any]:
    """The field values to write into a Payment row."""
    return {name: getattr(state, name) for name in FIELDS}

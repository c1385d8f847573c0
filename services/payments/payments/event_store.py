"""Appending to a payment's stream: optimistic concurrency, with the database as the arbiter.

An append names the version it expects the stream to be at and inserts the next versions. It lands
only if the stream's last version is exactly that one: the unique (payment, version) constraint refuses
a version someone else appended first (even one not committed yet: the insert waits for it), and the
`payments_event_follows_previous` trigger refuses a version whose predecessor does not exist. There is no
read-then-write check to race past.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from payments import ledger
from payments.models import STREAM_GAP_SQLSTATE, PaymentEvent

UNIQUE_VIOLATION = "23505"
VERSION_CONSTRAINT = "payments_event_stream_version"


class StreamConcurrencyError(Exception):
    """The stream is not at the expected version: another writer appended first (or the caller is stale)."""

    code = "stream_version_conflict"

    def __init__(self, payment_id: uuid.UUID, expected_version: int) -> None:
        super().__init__(
            f"payment {payment_id}'s stream is not at version {expected_version}: "
            "another writer appended to it first; reload the payment and decide again"
        )
        self.payment_id = payment_id
        self.expected_version = expected_version


def append(
    *,
    payment_id: uuid.UUID,
    expected_version: int,
    events: Sequence[tuple[str, dict[str, Any]]],
    at: datetime,
) -> list[PaymentEvent]:
    """Append `events` (type, data) after `expected_version`, all at time `at`; returns them as stored.

    Raises StreamConcurrencyError, leaving the caller's transaction usable, when the stream has moved on.
    """
    rows = [
        PaymentEvent(
            payment_id=payment_id,
            version=expected_version + offset,
            type=_known(event_type),
            data=_plain_json(data),
            occurred_at=at,
        )
        for offset, (event_type, data) in enumerate(events, start=1)
    ]
    try:
        with transaction.atomic():  # a savepoint: a refused append does not abort the caller's transaction
            PaymentEvent.objects.bulk_create(rows)
    except IntegrityError as exc:
        if _is_version_conflict(exc):
            raise StreamConcurrencyError(payment_id, expected_version) from exc
        raise
    return rows


def _known(event_type: str) -> str:
    if event_type not in ledger.EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not a payment ledger event type")
    return event_type


def _plain_json(data: dict[str, Any]) -> dict[str, Any]:
    """The data as the database will give it back, so the live fold sees what a rebuild will see.
    Refuses what JSON cannot hold as such (datetimes, decimals: encode them first, see payments.ledger)."""
    return json.loads(json.dumps(data, allow_nan=False))


def _is_version_conflict(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate == STREAM_GAP_SQLSTATE:
        return True
    diag = getattr(cause, "diag", None)
    return sqlstate == UNIQUE_VIOLATION and getattr(diag, "constraint_name", None) == VERSION_CONSTRAINT

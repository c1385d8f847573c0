"""How far behind the primary the replica is, as this process last saw it.

A sample is two small queries: the primary's WAL write position and clock, then the replica's replay
position and the commit time of the last transaction it replayed. Each process samples at most once per
REPLICA_CHECK_SECONDS, and only one of its threads at a time (the others keep the previous answer), so a
read never pays for a health check and a replica that hangs holds one request, not all of them.

The lag in seconds is how old the oldest write the replica has not replayed may be: zero when it has
replayed everything the primary had written, otherwise the time since the later of the last transaction
it replayed and the last sample that found it caught up (after a long quiet spell, the last replayed
transaction is old although the replica was current a second ago). All times are the primary's clock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connections

from shared.replica.lsn import lsn_value

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"


@dataclass(frozen=True)
class Health:
    available: bool
    lag_seconds: float | None = None  # None: unknown (nothing replayed since the replica started)
    lag_bytes: int | None = None
    problem: str = ""


@dataclass(frozen=True)
class Sample:
    written: int  # the primary's WAL write position
    primary_time: float  # the primary's clock when it was read (epoch seconds)
    in_recovery: bool  # False: the alias reaches a primary (promoted, or no replica at all)
    replayed: int | None  # the replica's replay position
    replayed_commit_time: float | None  # commit time of the last transaction the replica replayed


def measure(sample: Sample, caught_up_at: float | None) -> tuple[Health, float | None]:
    """The replica's health from a sample, and the new time it was last seen caught up."""
    if not sample.in_recovery:  # a primary: nothing to wait for
        return Health(True, 0.0, 0), sample.primary_time
    behind = max(sample.written - (sample.replayed or 0), 0)
    if behind == 0:
        return Health(True, 0.0, 0), sample.primary_time
    moments = [moment for moment in (sample.replayed_commit_time, caught_up_at) if moment is not None]
    lag = max(sample.primary_time - max(moments), 0.0) if moments else None
    return Health(True, lag, behind), caught_up_at


def take_sample() -> Sample:
    """The two queries, each on this thread's connection to its database (the primary's first: whatever
    it had written by then, a caught-up replica has replayed)."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text, extract(epoch FROM clock_timestamp())")
        written, primary_time = cursor.fetchone()
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
            " extract(epoch FROM pg_last_xact_replay_timestamp())"
        )
        in_recovery, replayed, replayed_commit_time = cursor.fetchone()
    return Sample(
        written=lsn_value(written),
        primary_time=float(primary_time),
        in_recovery=in_recovery,
        replayed=lsn_value(replayed) if replayed else None,
        replayed_commit_time=float(replayed_commit_time) if replayed_commit_time is not None else None,
    )


def drop_replica_connection() -> None:
    """Forget this thread's replica connection after a failure: the next use connects afresh."""
    with contextlib.suppress(DatabaseError):
        connections[REPLICA].close()


class HealthMonitor:
    """This process's view of the replica, sampled at most once per `interval` seconds."""

    def __init__(
        self,
        interval: Callable[[], float],
        sample: Callable[[], Sample] = take_sample,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._sample = sample
        self._clock = clock
        self._lock = threading.Lock()
        self._health: Health | None = None
        self._valid_until = 0.0
        self._caught_up_at: float | None = None

    def current(self) -> Health:
        """The latest health, sampled again when older than the interval. While another thread samples,
        the previous answer (before any: unavailable, so that reads go to the primary)."""
        if self._health is not None and self._clock() < self._valid_until:
            return self._health
        if not self._lock.acquire(blocking=False):
            return self._health or Health(False, problem="being checked")
        try:
            self._health = self._check()
            self._valid_until = self._clock() + self._interval()
            return self._health
        finally:
            self._lock.release()

    def _check(self) -> Health:
        try:
            sample = self._sample()
        except DatabaseError as exc:
            if self._health is None or self._health.available:
                logger.warning(
                    "read replica unavailable: lag-tolerant reads use the primary", extra={"error": str(exc)}
                )
            drop_replica_connection()
            return Health(False, problem=str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        health, self._caught_up_at = measure(sample, self._caught_up_at)
        return health

    def failed(self, problem: str) -> None:
        """A read found the replica unusable: unavailable for this process until the next sample is due."""
        self._health = Health(False, problem=problem)
        self._valid_until = self._clock() + self._interval()

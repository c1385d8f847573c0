"""Time partitions of the outbox and the inbox: created ahead, dropped whole once past retention.

Both tables grow by every event (about seven rows per order across the services), so they are
range-partitioned (Postgres declarative partitioning, migration 0004): the outbox by `created_at`, the
inbox by the event's own `occurred_at`. Retention is then a cheap partition drop, never a DELETE that
rewrites the table and bloats its indexes.

Why the inbox is keyed by `occurred_at`: a unique constraint on a partitioned table must include the
partition key, so the inbox's "once per consumer" constraint is (consumer, event_id, occurred_at). The
event's `occurred_at` is fixed by its publisher, so every redelivery of an event lands in the partition
of its first delivery and is refused there. An insert time would put a redelivery in a newer partition,
beside the first, and apply it twice.

The window's edge: an event whose partition was already dropped (or is not created yet) finds no
partition for its row; `shared.messaging.inbox` then dead-letters it (reason `outside_dedup_window`)
instead of applying it, since nothing can say whether it was applied before. Redeliveries happen within
seconds (the queue's delivery limit) or, for dead letters an operator replays, within the inbox's
retention: docs/data.md says why the defaults are what they are.

Rules of `maintain()`, run by every service's beat (`messaging.maintain_partitions`) and after `migrate`:
- partitions are created from the newest one's upper bound onward, `MESSAGING_PARTITIONS_AHEAD`
  intervals of `MESSAGING_PARTITION_SECONDS` past now, never before it, so they never overlap, even
  after the interval setting changed;
- a partition whose upper bound is older than its table's retention is detached (`CONCURRENTLY`:
  writers of the live partitions never wait) and dropped;
- an outbox partition still holding an unpublished event is never dropped: that would lose the event.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

# pg_get_expr(relpartbound) of a range partition: FOR VALUES FROM ('2026-12-05 00:00:00+00') TO (...),
# or MINVALUE for the partition holding the rows from before partitioning. Postgres offers the bounds
# only as this text (there is no structured catalog column), so it is parsed here.
_BOUND = re.compile(r"FROM \((?:'(?P<lower>[^']+)'|MINVALUE)\) TO \((?:'(?P<upper>[^']+)'|MAXVALUE)\)")
# Two services' beats never maintain the same tables (one database each), but two runs in one service
# (a slow run overtaken by the next) would both try to create the same partition.
_ADVISORY_LOCK_KEY = 0x6F757462  # "outb"


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # the partition key column
    retention_setting: str
    # A partition still holding a row that matches this condition is kept past retention.
    keep_while: str | None = None

    @property
    def retention(self) -> timedelta:
        return timedelta(seconds=getattr(settings, self.retention_setting))


OUTBOX = Table("messaging_outboxevent", "created_at", "OUTBOX_RETENTION_SECONDS", "published_at IS NULL")
INBOX = Table("messaging_inboxmessage", "occurred_at", "INBOX_RETENTION_SECONDS")
TABLES = (OUTBOX, INBOX)


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: MINVALUE (the partition of the rows from before partitioning)
    upper: datetime
    detach_pending: bool = False


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept_pending: list[str] = field(default_factory=list)  # expired outbox partitions with unpublished events

    def as_dict(self) -> dict:
        return {"created": self.created, "dropped": self.dropped, "kept_pending": self.kept_pending}


def interval() -> timedelta:
    return timedelta(seconds=settings.MESSAGING_PARTITION_SECONDS)


def partitions(table: Table) -> list[Partition]:
    """The table's partitions, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname, pg_get_expr(child.relpartbound, child.oid), inh.inhdetachpending "
            "FROM pg_inherits inh JOIN pg_class child ON child.oid = inh.inhrelid "
            "WHERE inh.inhparent = %s::regclass",
            [table.name],
        )
        rows = cursor.fetchall()
    found = [_partition(name, bound, pending) for name, bound, pending in rows]
    return sorted(found, key=lambda p: p.upper)


def _partition(name: str, bound: str, detach_pending: bool) -> Partition:
    match = _BOUND.search(bound)
    if match is None or match["upper"] is None:
        raise ValueError(f"partition {name} has bounds this module does not manage: {bound}")
    lower = _timestamp(match["lower"]) if match["lower"] else None
    return Partition(name, lower, _timestamp(match["upper"]), detach_pending)


def _timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def aligned_start(moment: datetime) -> datetime:
    """The start of the interval holding `moment`, intervals counted from the Unix epoch (UTC)."""
    seconds = int(interval().total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def partition_name(table: Table, lower: datetime) -> str:
    return f"{table.name}_p{lower.astimezone(UTC):%Y%m%d_%H%M%S}"


def is_partitioned(table: Table) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table.name])
        row = cursor.fetchone()
    return bool(row and row[0])


def create_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate: every `migrate` (each `up`, each deployment's migrate job) also makes sure the
    partitions ahead exist, so a platform whose beat was down for long starts writable."""
    if using != connection.alias:
        return
    now = datetime.now(UTC)
    for table in TABLES:
        if is_partitioned(table):
            create_ahead(table, now)


def maintain(now: datetime | None = None) -> Report:
    """Create the partitions ahead and drop the expired ones, in every partitioned table."""
    now = now or datetime.now(UTC)
    report = Report()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            logger.info("partition maintenance already running; skipped")
            return report
        try:
            for table in TABLES:
                report.created += create_ahead(table, now)
                dropped, kept = drop_expired(table, now)
                report.dropped += dropped
                report.kept_pending += kept
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_ADVISORY_LOCK_KEY])
    if report.created or report.dropped or report.kept_pending:
        logger.info("partitions maintained", extra={"partitions": report.as_dict()})
    return report


def create_ahead(table: Table, now: datetime) -> list[str]:
    """Partitions from the newest upper bound (or the current interval) to `PARTITIONS_AHEAD` past now."""
    existing = partitions(table)
    start = existing[-1].upper if existing else aligned_start(now)
    horizon = aligned_start(now) + interval() * (settings.MESSAGING_PARTITIONS_AHEAD + 1)
    created = []
    while start < horizon:
        end = aligned_start(start) + interval()
        name = partition_name(table, start)
        with connection.cursor() as cursor:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table.name}" '
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        created.append(name)
        start = end
    return created


def drop_expired(table: Table, now: datetime) -> tuple[list[str], list[str]]:
    """Detach and drop every partition whose upper bound is older than the retention; returns (dropped,
    kept because they still hold what must not be lost)."""
    cutoff = now - table.retention
    dropped, kept = [], []
    for partition in partitions(table):
        if partition.upper > cutoff:
            break  # oldest first: the rest are newer
        if table.keep_while and _holds(partition, table.keep_while):
            logger.error(
                "expired outbox partition still holds unpublished events; kept",
                extra={"partition": partition.name},
            )
            kept.append(partition.name)
            continue
        _detach(table, partition)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE "{partition.name}"')
        dropped.append(partition.name)
    return dropped, kept


def _holds(partition: Partition, condition: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{partition.name}" WHERE {condition})')  # noqa: S608
        return cursor.fetchone()[0]


def _detach(table: Table, partition: Partition) -> None:
    """CONCURRENTLY takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so inserts into the live
    partitions go on; it cannot run in a transaction block. A detach interrupted half-way leaves the
    partition "detach pending", which FINALIZE completes."""
    if connection.in_atomic_block:
        raise RuntimeError("partition maintenance runs outside a transaction (DETACH ... CONCURRENTLY)")
    mode = "FINALIZE" if partition.detach_pending else "CONCURRENTLY"
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table.name}" DETACH PARTITION "{partition.name}" {mode}')


def seconds_ahead(table: Table, now: datetime | None = None) -> float:
    """How far past now the table's partitions reach (negative: inserts about to fail)."""
    found = partitions(table)
    if not found:
        return 0.0
    return (found[-1].upper - (now or datetime.now(UTC))).total_seconds()


def dedup_horizon(now: datetime | None = None) -> datetime | None:
    """The oldest `occurred_at` the inbox can still recognise as a repeat (None: no partition)."""
    found = [p for p in partitions(INBOX) if not p.detach_pending]
    if not found:
        return None
    return found[0].lower or datetime.min.replace(tzinfo=UTC)

"""The outbox's and inbox's time partitions: created ahead, dropped past retention, and the inbox's
deduplication inside its window and at its edge (shared.messaging.partitions), on the real database.

Time is simulated by handing `now` to the maintenance functions, starting at the newest partition the
migration created (a week or so ahead), with minute-sized partitions. Tests that drop partitions put
the tables back as the migration leaves them (`restored_layout`).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from shared.messaging import deadletters, inbox, partitions, relay
from shared.messaging.events import Event, OutsideDedupWindow, new_event
from shared.messaging.models import InboxMessage, OutboxEvent
from shared.testing import scrape, wait_until
from tests.ledger.models import Credit
from tests.ledger.services import account_credit

pytestmark = pytest.mark.django_db(transaction=True)

MINUTE = timedelta(minutes=1)
RETENTION = timedelta(minutes=5)
CONSUMER = "tests.ledger.handlers.on_credited"
SERVICE = "shared_tests"


def restore_layout() -> None:
    """Every partition dropped, then the migration's layout again: one partition reaching back without
    limit to the end of the current interval, and the intervals ahead (data goes with them: these tests
    flush the database anyway)."""
    now = datetime.now(UTC)
    cutover = partitions.aligned_start(now) + partitions.interval()
    with connection.cursor() as cursor:
        for table in partitions.TABLES:
            for partition in partitions.partitions(table):
                cursor.execute(f'DROP TABLE "{partition.name}"')
            cursor.execute(
                f'CREATE TABLE "{table.name}_legacy" PARTITION OF "{table.name}" '
                "FOR VALUES FROM (MINVALUE) TO (%s)",
                [cutover],
            )
        cursor.execute(
            f'CREATE UNIQUE INDEX inbox_legacy_once ON "{partitions.INBOX.name}_legacy" (consumer, event_id)'
        )
    for table in partitions.TABLES:
        partitions.create_ahead(table, now)


@pytest.fixture
def minutes(settings):
    """Minute-sized partitions and five minutes' retention from here on; the start of the simulated
    clock (the newest partition's upper bound) is returned. The tables are restored afterwards."""
    start = max(partitions.partitions(table)[-1].upper for table in partitions.TABLES)
    layout = override_settings(
        MESSAGING_PARTITION_SECONDS=settings.MESSAGING_PARTITION_SECONDS,
        MESSAGING_PARTITIONS_AHEAD=settings.MESSAGING_PARTITIONS_AHEAD,
    )
    settings.MESSAGING_PARTITION_SECONDS = 60
    settings.MESSAGING_PARTITIONS_AHEAD = 3
    settings.INBOX_RETENTION_SECONDS = settings.OUTBOX_RETENTION_SECONDS = int(RETENTION.total_seconds())
    yield start
    with layout:
        restore_layout()


def credited(occurred_at: datetime) -> Event:
    event = Event.from_envelope(new_event("ledger.credited", {"account": "a", "amount": 1}).as_envelope())
    return replace(event, occurred_at=occurred_at.isoformat())


def contiguous(found: list[partitions.Partition]) -> bool:
    return all(earlier.upper == later.lower for earlier, later in itertools.pairwise(found))


def test_the_migration_leaves_both_tables_partitioned_with_partitions_ahead(settings):
    for table in partitions.TABLES:
        assert partitions.is_partitioned(table)
        found = partitions.partitions(table)
        assert found[0].lower is None  # the rows from before partitioning: no lower limit
        assert contiguous(found)
        assert partitions.seconds_ahead(table) >= settings.MESSAGING_PARTITIONS_AHEAD * 86_400


def test_partitions_are_created_ahead_in_order_and_never_overlap_after_the_interval_changed(
    minutes, settings
):
    created = partitions.create_ahead(partitions.OUTBOX, minutes + 10 * MINUTE)

    # From the newest bound to three intervals past the one holding `now`: minutes 0 to 14.
    assert created == [partitions.partition_name(partitions.OUTBOX, minutes + n * MINUTE) for n in range(14)]
    assert partitions.create_ahead(partitions.OUTBOX, minutes + 10 * MINUTE) == []  # idempotent
    settings.MESSAGING_PARTITION_SECONDS = 300
    more = partitions.create_ahead(partitions.OUTBOX, minutes + 10 * MINUTE)

    # The first one only realigns (minute 14 to 15), the others are five minutes long.
    assert more == [
        partitions.partition_name(partitions.OUTBOX, minutes + n * MINUTE) for n in (14, 15, 20, 25)
    ]
    found = partitions.partitions(partitions.OUTBOX)
    assert contiguous(found)
    assert found[-1].upper - found[-1].lower == timedelta(minutes=5)


def test_a_redelivery_inside_the_window_is_refused_and_the_window_edge_is_safe(minutes):
    partitions.create_ahead(partitions.INBOX, minutes + 10 * MINUTE)
    first = credited(minutes + 30 * timedelta(seconds=1))  # in the first minute partition
    later = credited(minutes + MINUTE)  # the first instant of the next one

    assert inbox.claim(CONSUMER, first) is True
    assert inbox.claim(CONSUMER, first) is False  # redelivered inside the window: refused
    assert InboxMessage.objects.get(event_id=first.id).deliveries == 2

    # Retention has passed for the first minute's partition only.
    report = partitions.maintain(now=minutes + MINUTE + RETENTION)
    assert partitions.partition_name(partitions.INBOX, minutes) in report.dropped
    assert all(p.upper > minutes + MINUTE for p in partitions.partitions(partitions.INBOX))

    # Its row went with it: the inbox cannot tell a repeat any more, so it refuses rather than apply.
    with pytest.raises(OutsideDedupWindow):
        inbox.claim(CONSUMER, first)
    assert inbox.claim(CONSUMER, later) is True  # the edge's other side is still inside
    assert inbox.claim(CONSUMER, later) is False
    assert partitions.dedup_horizon() == minutes + MINUTE


def test_an_event_outside_the_window_is_not_handled_at_all(minutes):
    partitions.maintain(now=minutes + MINUTE + RETENTION)
    envelope = {**new_event("ledger.credited", {"account": "late", "amount": 3}).as_envelope()}
    envelope["occurred_at"] = (minutes + timedelta(seconds=10)).isoformat()

    with pytest.raises(OutsideDedupWindow) as refused:
        inbox.deliver(envelope)

    assert refused.value.reason == "outside_dedup_window"
    assert not Credit.objects.filter(event_id=envelope["id"]).exists()
    assert not InboxMessage.objects.filter(event_id=envelope["id"]).exists()


def test_an_outbox_partition_holding_an_unpublished_event_outlives_its_retention(minutes):
    partitions.create_ahead(partitions.OUTBOX, minutes + 10 * MINUTE)
    # An event recorded in the first minute, never published (the update moves it to that partition).
    row = OutboxEvent.objects.create(event_type="ledger.credited", envelope={"id": str(uuid.uuid4())})
    OutboxEvent.objects.filter(id=row.id).update(created_at=minutes + timedelta(seconds=5))
    first_minute = partitions.partition_name(partitions.OUTBOX, minutes)

    report = partitions.maintain(now=minutes + 2 * MINUTE + RETENTION)

    assert report.kept_pending == [first_minute]
    assert partitions.partition_name(partitions.OUTBOX, minutes + MINUTE) in report.dropped
    assert OutboxEvent.objects.filter(id=row.id, published_at__isnull=True).exists()

    relay.mark_published([row.id])
    assert partitions.maintain(now=minutes + 2 * MINUTE + RETENTION).dropped == [first_minute]
    assert not OutboxEvent.objects.filter(id=row.id).exists()


def test_an_event_seen_before_partitioning_is_still_refused_whatever_its_occurred_at():
    """Rows from before the migration carry `received_at` as their key; the legacy partition's own
    unique index on (consumer, event_id) still refuses the repeat, which carries its real time."""
    event = credited(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    InboxMessage.objects.create(
        consumer=CONSUMER,
        event_id=event.id,
        event_type=event.type,
        occurred_at=datetime(2026, 1, 1, 12, 0, 3, tzinfo=UTC),  # as the migration keyed it
    )

    assert inbox.claim(CONSUMER, event) is False
    assert InboxMessage.objects.get(event_id=event.id).deliveries == 2


def test_a_time_without_an_offset_is_malformed():
    envelope = new_event("ledger.credited", {"account": "a", "amount": 1}).as_envelope()
    envelope["occurred_at"] = "2026-12-05T10:00:00"

    with pytest.raises(inbox.MalformedEvent, match="occurred_at"):
        Event.from_envelope(envelope)


def test_the_worker_dead_letters_an_event_outside_the_window_with_its_reason(worker):
    """Through the real broker and worker: an event from beyond the newest partition (a producer's
    clock far ahead) is dead-lettered, counted, and never applied."""
    ahead = partitions.partitions(partitions.INBOX)[-1].upper + timedelta(days=1)

    def refused() -> float:
        metrics = scrape(worker.metrics_url)
        return metrics.value("celery_messages_rejected_total", reason="outside_dedup_window")

    before = refused()
    event = account_credit(account="in-the-window", amount=7)
    # The same kind of event as a producer with a clock more than a week ahead would have written it.
    envelope = {**OutboxEvent.objects.get(id=event.id).envelope, "id": str(uuid.uuid4())}
    envelope["occurred_at"] = ahead.isoformat()
    OutboxEvent.objects.create(id=envelope["id"], event_type=event.type, envelope=envelope)
    relay.sweep()

    wait_until(lambda: refused() == before + 1, message="the event dead-lettered as outside the window")
    wait_until(lambda: Credit.objects.filter(event_id=event.id).exists(), message="the event in the window")
    assert not Credit.objects.filter(event_id=envelope["id"]).exists()
    assert not InboxMessage.objects.filter(event_id=envelope["id"]).exists()
    dead = wait_until(
        lambda: [d for d in deadletters.peek(service=SERVICE) if d.id == envelope["id"]], message="dead"
    )
    assert [(d.reason, d.queue) for d in dead] == [("rejected", f"{SERVICE}.events")]
    assert deadletters.purge([envelope["id"]], service=SERVICE) == 1

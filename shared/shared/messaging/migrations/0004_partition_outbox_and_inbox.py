"""The outbox and the inbox become range-partitioned by time (shared.messaging.partitions says why).

Postgres cannot partition a table in place, so each is rebuilt: the old table is renamed, a partitioned
one created in its shape, the old rows moved into one partition that reaches back without limit
(`<table>_legacy`, up to the end of the current interval), and the partitions ahead created. The whole
migration is one transaction: writers wait for it, and nothing is lost or seen half-done.

Keys. A primary key or unique constraint on a partitioned table must include the partition key, so the
database's primary keys become (id, created_at) and (id, occurred_at), and the inbox's "once per
consumer" (consumer, event_id, occurred_at). Django keeps `id` as the primary key in its model state,
since its admin cannot show a model with a composite key; `id` alone is still unique in practice (a
UUID; an identity sequence).

The inbox gains `occurred_at`, the event's own time, as its partition key. The rows from before it
never had it, so they take `received_at`; a repeat of one of those events would carry its real
`occurred_at`, miss the row and apply twice, so the legacy partition keeps a unique index on
(consumer, event_id) alone, which the inbox's insert respects (`ON CONFLICT DO NOTHING` checks every
unique index of the partition the row goes to).
"""

from datetime import UTC, datetime

import django.utils.timezone
from django.db import migrations, models

OUTBOX = "messaging_outboxevent"
INBOX = "messaging_inboxmessage"


def _rebuild(table: str, key: str, cutover: datetime, indexes: list[tuple[str, str]]) -> list[str]:
    """SQL rebuilding `table` partitioned by `key`, its rows moved into a legacy partition."""
    old = f"{table}_before_partitioning"
    statements = [
        f'ALTER TABLE "{table}" RENAME TO "{old}"',
        f'ALTER TABLE "{old}" RENAME CONSTRAINT "{table}_pkey" TO "{old}_pkey"',
        *(f'ALTER INDEX "{name}" RENAME TO "{name}_before_partitioning"' for name, _ in indexes),
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING IDENTITY) PARTITION BY RANGE ("{key}")',
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (id, "{key}")',
        *(definition for _, definition in indexes),
        f"CREATE TABLE \"{table}_legacy\" PARTITION OF \"{table}\" FOR VALUES FROM (MINVALUE) TO ('{cutover.isoformat()}')",
        f'INSERT INTO "{table}" SELECT * FROM "{old}"',
        f'DROP TABLE "{old}"',
    ]
    return statements


def partition(apps, schema_editor):
    from shared.messaging import partitions

    now = datetime.now(UTC)
    cutover = partitions.aligned_start(now) + partitions.interval()
    run = schema_editor.execute
    for statement in _rebuild(
        OUTBOX,
        "created_at",
        cutover,
        [
            ("outbox_pending_idx", f'CREATE INDEX outbox_pending_idx ON "{OUTBOX}" (created_at) WHERE published_at IS NULL'),
            ("outbox_order_idx", f'CREATE INDEX outbox_order_idx ON "{OUTBOX}" (order_id) WHERE order_id IS NOT NULL'),
        ],
    ):
        run(statement)
    run(f'ALTER TABLE "{INBOX}" ADD COLUMN occurred_at timestamp with time zone')
    run(f'UPDATE "{INBOX}" SET occurred_at = received_at')
    run(f'ALTER TABLE "{INBOX}" ALTER COLUMN occurred_at SET NOT NULL')
    run(f'ALTER TABLE "{INBOX}" DROP CONSTRAINT inbox_once_per_consumer')
    for statement in _rebuild(
        INBOX,
        "occurred_at",
        cutover,
        [
            ("inbox_order_idx", f'CREATE INDEX inbox_order_idx ON "{INBOX}" (order_id) WHERE order_id IS NOT NULL'),
        ],
    ):
        run(statement)
    run(f'ALTER TABLE "{INBOX}" ADD CONSTRAINT inbox_once_per_consumer UNIQUE (consumer, event_id, occurred_at)')
    run(f'CREATE UNIQUE INDEX inbox_legacy_once ON "{INBOX}_legacy" (consumer, event_id)')
    # The new table's identity starts where the old one's ended.
    run(f"SELECT setval(pg_get_serial_sequence('{INBOX}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM \"{INBOX}\"), false)")
    partitions.create_ahead(partitions.OUTBOX, now)
    partitions.create_ahead(partitions.INBOX, now)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_order_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="inboxmessage",
                    name="occurred_at",
                    field=models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="When the event happened, as its publisher stamped it: the partition key.",
                    ),
                ),
                migrations.RemoveConstraint(model_name="inboxmessage", name="inbox_once_per_consumer"),
                migrations.AddConstraint(
                    model_name="inboxmessage",
                    constraint=models.UniqueConstraint(
                        fields=("consumer", "event_id", "occurred_at"), name="inbox_once_per_consumer"
                    ),
                ),
            ],
            # One way: going back would mean rebuilding unpartitioned tables from every partition.
            database_operations=[migrations.RunPython(partition)],
        ),
    ]

"""Events a backup caught between two services: published by their producer, not yet recorded by a
consumer. At backup time they were messages in a queue, and messages are not in a backup.

Once the databases are restored, each such event's outbox row is marked unpublished again, so the
outbox relay publishes it once the platform runs; every consumer that already had it finds it in its
inbox and skips it (shared.messaging.inbox). Outbox rows that were still unpublished in the backup need
nothing: the relay's sweep publishes them like any other.

What "recorded" means is read where the platform keeps it: a service's inbox holds one row per local
consumer (handler) of an event, and the broker definitions in the backup say which service's queue
receives which event type. Only events published within `window` before the earliest snapshot are
looked at: the window must stay shorter than the inbox's retention (INBOX_RETENTION_SECONDS), or an
event whose inbox rows were dropped would apply twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from devtools.backup import admin_connect
from devtools.instance import Platform


def events_to_republish(
    platform: Platform, subscriptions: dict[str, set[str]], since: datetime
) -> dict[str, list[str]]:
    """Producer service -> ids of events it published since `since` that a subscriber never recorded."""
    published = {service: published_events(platform, service, since) for service in subscriptions}
    missing: set[str] = set()
    for consumer, types in subscriptions.items():
        wanted = [
            (event_id, event_type)
            for events in published.values()
            for event_id, event_type in events
            if event_type in types
        ]
        missing |= unrecorded(platform, consumer, wanted)
    return {
        producer: [event_id for event_id, _type in events if event_id in missing]
        for producer, events in published.items()
    }


def published_events(platform: Platform, service: str, since: datetime) -> list[tuple[str, str]]:
    with admin_connect(platform, platform.instance.database(service), autocommit=True) as db:
        rows = db.execute(
            "SELECT id::text, event_type FROM messaging_outboxevent WHERE published_at >= %s "
            "ORDER BY created_at",
            [since],
        )
        return rows.fetchall()


def unrecorded(platform: Platform, consumer: str, wanted: list[tuple[str, str]]) -> set[str]:
    """The ids of `wanted` events that `consumer`'s inbox lacks for one of its handlers of that type.

    How many handlers a type has is read from the inbox too: the most that ever recorded one event of it.
    """
    if not wanted:
        return set()
    with admin_connect(platform, platform.instance.database(consumer), autocommit=True) as db:
        handlers = dict(
            db.execute(
                "SELECT event_type, count(DISTINCT consumer) FROM messaging_inboxmessage "
                "WHERE event_type = ANY(%s) GROUP BY event_type",
                [sorted({event_type for _id, event_type in wanted})],
            ).fetchall()
        )
        recorded = Counter(
            dict(
                db.execute(
                    "SELECT event_id::text, count(*) FROM messaging_inboxmessage "
                    "WHERE event_id = ANY(%s::uuid[]) GROUP BY event_id",
                    [[event_id for event_id, _type in wanted]],
                ).fetchall()
            )
        )
    return {
        event_id
        for event_id, event_type in wanted
        if recorded[event_id] < max(1, handlers.get(event_type, 0))
    }


def mark_unpublished(platform: Platform, service: str, event_ids: list[str]) -> int:
    """Hand the events back to the outbox relay: it publishes rows whose `published_at` is empty."""
    if not event_ids:
        return 0
    with admin_connect(platform, platform.instance.database(service), autocommit=True) as db:
        return db.execute(
            "UPDATE messaging_outboxevent SET published_at = NULL WHERE id = ANY(%s::uuid[])", [event_ids]
        ).rowcount

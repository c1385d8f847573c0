"""The outbox's backlog as gauges read at scrape time (the web `/metrics`, shared.observability.metrics).

Registered by the messaging app (MessagingConfig.ready) in every service.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from shared.messaging import partitions
from shared.messaging.models import OutboxEvent
from shared.observability.metrics import DatabaseCollector, age_seconds


class OutboxCollector(DatabaseCollector):
    """outbox_pending_rows and outbox_oldest_pending_age_seconds: one indexed query (outbox_pending_idx);
    messaging_partitions_ahead_seconds/_intervals: how far ahead the outbox's and inbox's partitions reach
    (a query of the catalog), which falls towards 0 when partition maintenance stops running."""

    def families(self) -> Iterable:
        pending = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(
            rows=Count("id"), oldest=Min("created_at")
        )
        yield GaugeMetricFamily(
            "outbox_pending_rows", "Outbox events not yet confirmed by the broker.", pending["rows"]
        )
        yield GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox event (0 when none).",
            age_seconds(pending["oldest"], timezone.now()),
        )
        ahead = GaugeMetricFamily(
            "messaging_partitions_ahead_seconds",
            "How far past now the table's newest partition reaches; inserts fail once it is negative.",
            labels=["table"],
        )
        intervals = GaugeMetricFamily(
            "messaging_partitions_ahead_intervals",
            "The same in partition intervals (MESSAGING_PARTITION_SECONDS), whatever their size.",
            labels=["table"],
        )
        for table in partitions.TABLES:
            seconds = partitions.seconds_ahead(table)
            ahead.add_metric([table.name], seconds)
            intervals.add_metric([table.name], seconds / partitions.interval().total_seconds())
        yield ahead
        yield intervals

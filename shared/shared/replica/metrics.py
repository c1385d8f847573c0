"""The read replica's metrics: where lag-tolerant reads went (counted), and its state (read at scrape time
from this process's latest health sample, so a scrape costs no more than a read does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LAG_TOLERANT_READS = Counter(
    "lag_tolerant_reads",
    "Requests whose lag-tolerant reads (listings, histories, admin change lists) were served by `database` "
    "(replica or primary), and why: replica; the primary's fallbacks unavailable and lagging; pinned "
    "(the reader's own write was not replayed yet); pin_unknown (Redis could not say).",
    ["database", "reason"],
)
ROUTES = (
    ("replica", "replica"),
    ("primary", "unavailable"),
    ("primary", "lagging"),
    ("primary", "pinned"),
    ("primary", "pin_unknown"),
)


def declared_routes() -> Iterable[dict[str, str]]:
    return ({"database": database, "reason": reason} for database, reason in ROUTES)


class ReplicaCollector(Collector):
    """replica_up, replica_lag_seconds, replica_lag_bytes and the limit, replica_max_lag_seconds; nothing
    when the service has no replica (DATABASE_REPLICA_URL unset)."""

    def __init__(self, health: Callable) -> None:
        self._health = health

    def describe(self) -> list:
        return []  # never sample at registration time

    def collect(self) -> Iterable:
        if not settings.REPLICA_ENABLED:
            return []
        health = self._health()
        families = [
            gauge(
                "replica_up",
                "1 when the read replica answered its last health sample, else 0.",
                health.available,
            ),
            gauge(
                "replica_max_lag_seconds",
                "REPLICA_MAX_LAG_SECONDS: beyond this lag, lag-tolerant reads go to the primary.",
                settings.REPLICA_MAX_LAG_SECONDS,
            ),
        ]
        if health.lag_seconds is not None:
            families.append(
                gauge(
                    "replica_lag_seconds",
                    "How old the oldest write the read replica has not replayed may be (0: caught up).",
                    health.lag_seconds,
                )
            )
        if health.lag_bytes is not None:
            families.append(
                gauge(
                    "replica_lag_bytes", "WAL the read replica has yet to replay, in bytes.", health.lag_bytes
                )
            )
        return families


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], float(value))
    return family

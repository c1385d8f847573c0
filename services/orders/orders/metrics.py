"""orders' business and saga metrics (docs/observability.md). Counted in `orders.services` after commit;
the non-terminal gauges are read from the database when the web `/metrics` is scraped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from orders.models import Order, OrderStatus, StatusReason
from shared.observability.metrics import DURATION_BUCKETS, DatabaseCollector, age_seconds, declare_label_sets

NON_TERMINAL = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)

ORDERS_CREATED = Counter("orders_created", "Orders placed (the saga started).")
ORDERS_TERMINAL = Counter(
    "orders_terminal",
    "Orders reaching a terminal status (confirmed, rejected, cancelled), by status and reason.",
    ["status", "reason"],
)
SAGA_DURATION = Histogram(
    "saga_duration_seconds",
    "From order creation to its first terminal status, by that status.",
    ["status"],
    buckets=DURATION_BUCKETS,
)

# The (status, reason) pairs the saga can end in, exported at zero from the start.
TERMINAL_OUTCOMES = {
    OrderStatus.CONFIRMED: (StatusReason.NONE,),
    OrderStatus.REJECTED: (StatusReason.OUT_OF_STOCK, StatusReason.UNKNOWN_PRODUCT),
    OrderStatus.CANCELLED: (
        StatusReason.PAYMENT_DECLINED,
        StatusReason.PAYMENT_UNAVAILABLE,
        StatusReason.PAYMENT_TIMEOUT,
        StatusReason.CUSTOMER_CANCELLED,
        StatusReason.STAFF_CANCELLED,
    ),
}
declare_label_sets(
    ORDERS_TERMINAL,
    ({"status": str(status), "reason": str(reason)} for status, reasons in TERMINAL_OUTCOMES.items()
     for reason in reasons),
)  # fmt: skip
declare_label_sets(SAGA_DURATION, ({"status": str(status)} for status in TERMINAL_OUTCOMES))


class NonTerminalOrdersCollector(DatabaseCollector):
    """orders_non_terminal{status} and the oldest one's age: one GROUP BY on order_status_recent_idx."""

    def families(self) -> Iterable:
        rows = (
            Order.objects.filter(status__in=NON_TERMINAL)
            .values("status")
            .annotate(count=Count("id"), oldest=Min("created_at"))
            .order_by()
        )
        by_status = {row["status"]: row for row in rows}
        gauge = GaugeMetricFamily(
            "orders_non_terminal", "Orders whose saga has not finished, by status.", labels=["status"]
        )
        for status in NON_TERMINAL:
            gauge.add_metric([str(status)], by_status.get(status, {}).get("count", 0))
        yield gauge
        oldest = min((row["oldest"] for row in by_status.values()), default=None)
        yield GaugeMetricFamily(
            "orders_oldest_non_terminal_age_seconds",
            "Age of the oldest order not yet confirmed, rejected or cancelled (0 when none).",
            age_seconds(oldest, timezone.now()),
        )


# At most this many stuck orders are exported, the oldest: one series per order id, so bounded.
STUCK_ORDERS_EXPORTED = 20


class StuckSagasCollector(DatabaseCollector):
    """saga_stuck_order_age_seconds{order_id, status}: the oldest orders not terminal past SAGA_STUCK_SECONDS.

    The alert SagaStuck fires per series and links the order's saga timeline. One query on
    order_status_recent_idx; the non-terminal orders are few (they finish in seconds), so it stays cheap.
    """

    def families(self) -> Iterable:
        now = timezone.now()
        stuck = (
            Order.objects.filter(
                status__in=NON_TERMINAL, created_at__lte=now - timedelta(seconds=settings.SAGA_STUCK_SECONDS)
            )
            .order_by("created_at", "id")
            .values_list("id", "status", "created_at")[:STUCK_ORDERS_EXPORTED]
        )
        gauge = GaugeMetricFamily(
            "saga_stuck_order_age_seconds",
            f"Age of each order not terminal after SAGA_STUCK_SECONDS (the oldest {STUCK_ORDERS_EXPORTED}).",
            labels=["order_id", "status"],
        )
        for order_id, status, created_at in stuck:
            gauge.add_metric([str(order_id), status], age_seconds(created_at, now))
        yield gauge

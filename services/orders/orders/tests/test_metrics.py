"""orders' business and saga metrics: counted once the transaction commits, gauges read from the database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from orders import services
from orders.metrics import STUCK_ORDERS_EXPORTED
from orders.models import Order, OrderStatus
from orders.services import LineRequest
from orders.tests.helpers import ADDRESS, make_order
from shared.testing import MetricSamples

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def place(catalog) -> Order:
    pen = catalog.add(name="Pen", price="1.00")
    return services.order_create(
        user_id=uuid.uuid4(),
        customer_email="carla@example.com",
        lines=[LineRequest(product_id=uuid.UUID(pen["id"]), quantity=1)],
        payment_token="tok_visa",
        shipping_address=dict(ADDRESS),
    )


def test_a_placed_order_is_counted_once_committed(catalog, django_capture_on_commit_callbacks):
    before = sample("orders_created_total")

    with django_capture_on_commit_callbacks(execute=False) as pending:
        place(catalog)
    assert sample("orders_created_total") == before  # not before the commit

    for callback in pending:
        callback()
    assert sample("orders_created_total") - before == 1


def test_an_order_that_rolls_back_is_not_counted(catalog, monkeypatch, django_capture_on_commit_callbacks):
    def broken_publish(*args, **kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "publish_event", broken_publish)
    before = sample("orders_created_total")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        place(catalog)

    assert sample("orders_created_total") == before


@pytest.mark.parametrize(
    ("move", "status", "reason"),
    [
        (lambda order: services.order_confirm(order_id=order.id), "confirmed", ""),
        (
            lambda order: services.order_reject(order_id=order.id, reason="out_of_stock"),
            "rejected",
            "out_of_stock",
        ),
        (
            lambda order: services.order_cancel_unpaid(order_id=order.id, reason="payment_declined"),
            "cancelled",
            "payment_declined",
        ),
    ],
)
def test_a_terminal_status_is_counted_with_its_reason_and_the_saga_duration(
    move, status, reason, django_capture_on_commit_callbacks
):
    order = make_order()
    Order.objects.filter(id=order.id).update(created_at=timezone.now() - timedelta(seconds=3))
    terminal_before = sample("orders_terminal_total", status=status, reason=reason)
    count_before = sample("saga_duration_seconds_count", status=status)
    sum_before = sample("saga_duration_seconds_sum", status=status)

    with django_capture_on_commit_callbacks(execute=True):
        assert move(order) is not None
        move(order)  # a duplicate event: the compare-and-set refuses, nothing more is counted

    assert sample("orders_terminal_total", status=status, reason=reason) - terminal_before == 1
    assert sample("saga_duration_seconds_count", status=status) - count_before == 1
    assert 3 <= sample("saga_duration_seconds_sum", status=status) - sum_before < 60


def test_cancelling_a_confirmed_order_counts_the_cancellation_but_not_a_second_saga(
    django_capture_on_commit_callbacks,
):
    order = make_order(status=OrderStatus.CONFIRMED)
    labels = {"status": "cancelled", "reason": "customer_cancelled"}
    terminal_before = sample("orders_terminal_total", **labels)
    durations_before = sample("saga_duration_seconds_count", status="cancelled")

    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(order_id=order.id)

    assert sample("orders_terminal_total", **labels) - terminal_before == 1
    assert sample("saga_duration_seconds_count", status="cancelled") == durations_before


def test_non_terminal_gauges_are_read_from_the_database_at_scrape_time(client):
    empty = MetricSamples(client.get("/metrics").content.decode())
    assert empty.value("orders_non_terminal", status="pending") == 0
    assert empty.value("orders_non_terminal", status="awaiting_payment") == 0
    assert empty.value("orders_oldest_non_terminal_age_seconds") == 0

    make_order(status=OrderStatus.PENDING)
    stuck = make_order(status=OrderStatus.AWAITING_PAYMENT)
    Order.objects.filter(id=stuck.id).update(created_at=timezone.now() - timedelta(minutes=5))
    make_order(status=OrderStatus.AWAITING_PAYMENT)
    make_order(status=OrderStatus.CONFIRMED)
    make_order(status=OrderStatus.REJECTED)

    samples = MetricSamples(client.get("/metrics").content.decode())
    assert samples.value("orders_non_terminal", status="pending") == 1
    assert samples.value("orders_non_terminal", status="awaiting_payment") == 2
    assert 300 <= samples.value("orders_oldest_non_terminal_age_seconds") < 360
    assert samples.value("outbox_pending_rows") >= 0 and samples.has("outbox_pending_rows")
    assert samples.value("circuit_breaker_state", downstream="catalog") == 0


def test_each_stuck_order_is_a_series_of_its_own_for_the_oldest_twenty(client, settings):
    settings.SAGA_STUCK_SECONDS = 120
    now = timezone.now()

    def aged(status: str, seconds: int) -> Order:
        order = make_order(status=status)
        Order.objects.filter(id=order.id).update(created_at=now - timedelta(seconds=seconds))
        return order

    oldest = aged(OrderStatus.PENDING, 3600)
    stuck = [aged(OrderStatus.AWAITING_PAYMENT, 600 - n) for n in range(STUCK_ORDERS_EXPORTED)]
    young = aged(OrderStatus.PENDING, 60)  # under the threshold: not stuck yet
    finished = aged(OrderStatus.CONFIRMED, 3600)

    samples = MetricSamples(client.get("/metrics").content.decode())

    series = {
        labels["order_id"]: (labels["status"], value)
        for labels, value in samples.matching("saga_stuck_order_age_seconds")
    }
    assert len(series) == STUCK_ORDERS_EXPORTED  # bounded: the youngest stuck one is left out
    assert series[str(oldest.id)][0] == "pending" and 3600 <= series[str(oldest.id)][1] < 3660
    assert str(stuck[-1].id) not in series
    assert series[str(stuck[0].id)][0] == "awaiting_payment"
    assert str(young.id) not in series and str(finished.id) not in series


def test_no_stuck_order_exports_no_series(client):
    make_order(status=OrderStatus.PENDING)

    samples = MetricSamples(client.get("/metrics").content.decode())

    assert samples.matching("saga_stuck_order_age_seconds") == []

"""inventory_reservations_total{outcome}: each state a reservation reaches, counted once after commit."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from inventory import services
from inventory.models import Reservation
from inventory.tests.helpers import line, order_created_data

pytestmark = pytest.mark.django_db

OUTCOMES = ("reserved", "rejected", "expired", "released", "committed", "returned")


def outcomes() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("inventory_reservations_total", {"outcome": outcome}) or 0.0
        for outcome in OUTCOMES
    }


def moved(before: dict[str, float]) -> dict[str, float]:
    """The outcomes whose counter changed since `before`, and by how much."""
    now = outcomes()
    changes = {outcome: now[outcome] - before[outcome] for outcome in OUTCOMES}
    return {outcome: change for outcome, change in changes.items() if change}


def reserve(product_id, quantity: int, order_id=None) -> Reservation:
    data = order_created_data(order_id or uuid.uuid4(), [line(product_id, quantity)])
    return services.reservation_create(order_id=data["order_id"], lines=data["lines"], order_facts=data)


def test_the_life_of_reservations_is_counted_by_outcome(make_stock, django_capture_on_commit_callbacks):
    stock = make_stock(3)
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=True):
        sold = reserve(stock.product_id, 1)
        reserve(stock.product_id, 1, order_id=sold.order_id)  # a duplicate order.created
        services.reservation_commit(order_id=sold.order_id)
        released = reserve(stock.product_id, 1)
        services.reservation_release(order_id=released.order_id)
        reserve(stock.product_id, 5)  # more than on hand
        services.reservation_cancel(order_id=sold.order_id)  # the owner cancels a confirmed order
        late = reserve(stock.product_id, 1)
        Reservation.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        services.reservations_expire()

    assert moved(before) == {
        "reserved": 3,
        "committed": 1,
        "released": 1,
        "rejected": 1,
        "returned": 1,
        "expired": 1,
    }


def test_a_rolled_back_reservation_is_not_counted(make_stock, django_capture_on_commit_callbacks):
    stock = make_stock(3)
    before = outcomes()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reserve(stock.product_id, 1)

    assert callbacks
    assert moved(before) == {}

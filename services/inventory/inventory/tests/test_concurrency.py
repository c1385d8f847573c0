"""Real concurrent transactions: each thread has its own database connection and commits for real."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections, transaction

from inventory import services
from inventory.models import Reservation, ReservationStatus, Stock
from inventory.tests.helpers import counts, line, order_facts
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def in_own_connection(work: Callable, *args, **kwargs):
    """Run `work` as one thread's unit of work, closing its connection afterwards (no leaked sessions)."""
    try:
        return work(*args, **kwargs)
    finally:
        connections.close_all()


def run_concurrently(calls: list[Callable]) -> list:
    """Start every call at once (a barrier), each in its own thread and connection; re-raise errors."""
    barrier = threading.Barrier(len(calls))

    def start(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(in_own_connection, start, call) for call in calls]
        return [future.result(timeout=60) for future in futures]


def reserve(order_id, *lines_) -> Callable:
    return lambda: services.reservation_create(
        order_id=order_id, lines=list(lines_), order_facts=order_facts()
    )


def test_twenty_orders_for_ten_units_reserve_exactly_ten(make_stock):
    stock = make_stock(10)

    results = run_concurrently([reserve(uuid.uuid4(), line(stock.product_id, 1)) for _ in range(20)])

    statuses = sorted(reservation.status for reservation in results)
    assert statuses.count(ReservationStatus.HELD) == 10
    assert statuses.count(ReservationStatus.FAILED) == 10
    assert counts(stock) == (0, 10, 0)
    assert Reservation.objects.filter(status=ReservationStatus.HELD).count() == 10
    assert OutboxEvent.objects.filter(event_type="inventory.reserved").count() == 10
    assert OutboxEvent.objects.filter(event_type="inventory.reservation_failed").count() == 10


def test_orders_locking_the_same_products_in_opposite_order_do_not_deadlock(make_stock):
    first, second = make_stock(100), make_stock(100)
    calls = [
        reserve(uuid.uuid4(), line(first.product_id, 1), line(second.product_id, 1))
        if index % 2
        else reserve(uuid.uuid4(), line(second.product_id, 1), line(first.product_id, 1))
        for index in range(16)
    ]

    results = run_concurrently(calls)

    assert {reservation.status for reservation in results} == {ReservationStatus.HELD}
    assert counts(first) == (84, 16, 0)
    assert counts(second) == (84, 16, 0)


def test_concurrent_duplicates_of_one_order_reserve_once(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()

    results = run_concurrently([reserve(order_id, line(stock.product_id, 2)) for _ in range(6)])

    assert len({reservation.pk for reservation in results}) == 1
    assert counts(stock) == (8, 2, 0)
    assert OutboxEvent.objects.filter(event_type="inventory.reserved").count() == 1


def test_a_cancel_racing_order_created_ends_with_nothing_held(make_stock):
    stock = make_stock(10)
    order_ids = [uuid.uuid4() for _ in range(8)]
    calls = []
    for order_id in order_ids:
        calls.append(reserve(order_id, line(stock.product_id, 1)))
        calls.append(lambda order_id=order_id: services.reservation_cancel(order_id=order_id))

    run_concurrently(calls)

    # Whichever came first, the cancellation wins: released, or a tombstone that refused the reservation.
    assert set(Reservation.objects.values_list("status", flat=True)) <= {
        ReservationStatus.RELEASED,
        ReservationStatus.TOMBSTONE,
    }
    assert Reservation.objects.count() == len(order_ids)
    assert counts(stock) == (10, 0, 0)


def test_the_sweep_skips_a_reservation_another_transaction_holds(make_stock):
    stock = make_stock(10)
    reservation = services.reservation_create(
        order_id=uuid.uuid4(), lines=[line(stock.product_id, 1)], order_facts=order_facts()
    )
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=reservation.created_at)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            Reservation.objects.select_for_update().get(pk=reservation.pk)
            locked.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=in_own_connection, args=(hold_the_row,))
    holder.start()
    try:
        assert locked.wait(timeout=30)
        assert services.reservations_expire() == 0  # skipped at once, not waited for
    finally:
        release.set()
        holder.join(timeout=30)

    assert services.reservations_expire() == 1
    assert Stock.objects.get().reserved == 1

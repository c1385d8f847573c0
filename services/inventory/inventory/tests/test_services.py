"""inventory's services: stock rows, reservations and their settlement, expiry, adjustments."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory import services
from inventory.models import Reservation, ReservationStatus, Stock, StockAdjustment
from inventory.tests.helpers import counts, line, order_created_data, published
from shared.messaging.models import OutboxEvent
from shared.web.errors import Conflict, DomainError, NotFound

pytestmark = pytest.mark.django_db


def reserve(order_id=None, *lines_, **facts) -> Reservation:
    data = order_created_data(order_id, lines_, **facts)
    return services.reservation_create(order_id=data["order_id"], lines=data["lines"], order_facts=data)


def expire_now(reservation: Reservation) -> None:
    """Let the sweep find it due."""
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


# Stock rows (product.created, product.deleted)


def test_stock_create_puts_the_initial_stock_on_hand():
    product_id = uuid.uuid4()

    stock, created = services.stock_create(product_id=product_id, initial_stock=7, sku="SKU-1")

    assert created is True
    assert (stock.product_id, stock.sku) == (product_id, "SKU-1")
    assert counts(stock) == (7, 0, 0)
    assert stock.available == 7


def test_stock_create_again_keeps_the_existing_counts(make_stock):
    stock = make_stock(5)
    reserve(None, line(stock.product_id, 2))

    again, created = services.stock_create(product_id=stock.product_id, initial_stock=100)

    assert created is False
    assert counts(again) == (3, 2, 0)
    assert Stock.objects.count() == 1


@pytest.mark.parametrize("initial_stock", [-1, "5", 2.5, None, True, services.MAX_STOCK_UNITS + 1])
def test_stock_create_refuses_a_nonsensical_initial_stock(initial_stock):
    with pytest.raises(services.InvalidEventData):
        services.stock_create(product_id=uuid.uuid4(), initial_stock=initial_stock)

    assert Stock.objects.count() == 0


def test_stock_create_refuses_a_product_id_that_is_not_a_uuid():
    with pytest.raises(services.InvalidEventData):
        services.stock_create(product_id="product-1", initial_stock=1)


def test_product_deleted_marks_the_row_and_keeps_the_counts(make_stock):
    stock = make_stock(4)
    reserve(None, line(stock.product_id, 1))

    services.stock_mark_product_deleted(product_id=stock.product_id)

    stock.refresh_from_db()
    assert stock.product_deleted_at is not None
    assert counts(stock) == (3, 1, 0)


def test_product_deleted_for_an_unknown_product_changes_nothing():
    assert services.stock_mark_product_deleted(product_id=uuid.uuid4()) is None
    assert Stock.objects.count() == 0


# Reserving (order.created)


def test_reserve_moves_units_from_on_hand_to_reserved_and_announces_it(make_stock, settings):
    settings.RESERVATION_TTL_SECONDS = 600
    widget, gadget = make_stock(10), make_stock(3)
    order_id = uuid.uuid4()
    before = timezone.now()

    reservation = reserve(order_id, line(widget.product_id, 4), line(gadget.product_id, 3))

    assert reservation.status == ReservationStatus.HELD
    assert (
        before + timedelta(seconds=600) <= reservation.expires_at <= timezone.now() + timedelta(seconds=600)
    )
    assert counts(widget) == (6, 4, 0)
    assert counts(gadget) == (0, 3, 0)
    assert {(ln.product_id, ln.quantity) for ln in reservation.lines.all()} == {
        (widget.product_id, 4),
        (gadget.product_id, 3),
    }
    [event] = published()
    assert OutboxEvent.objects.get().event_type == "inventory.reserved"
    assert event == {
        "order_id": str(order_id),
        "reservation_id": str(reservation.id),
        "expires_at": reservation.expires_at.isoformat(),
        "user_id": event["user_id"],
        "customer_email": "carla@example.com",
        "total": "25.00",
        "currency": "USD",
        "payment_token": "tok_visa",
        "lines": [line(widget.product_id, 4), line(gadget.product_id, 3)],
    }
    assert datetime.fromisoformat(event["expires_at"]) == reservation.expires_at


def test_reserve_adds_up_repeated_lines_of_one_product(make_stock):
    stock = make_stock(5)

    reservation = reserve(None, line(stock.product_id, 2), line(stock.product_id, 3))

    assert counts(stock) == (0, 5, 0)
    assert [(ln.product_id, ln.quantity) for ln in reservation.lines.all()] == [(stock.product_id, 5)]
    assert published("inventory.reserved")[0]["lines"] == [line(stock.product_id, 5)]


def test_reserve_exactly_what_is_on_hand_succeeds(make_stock):
    stock = make_stock(2)

    assert reserve(None, line(stock.product_id, 2)).status == ReservationStatus.HELD
    assert counts(stock) == (0, 2, 0)


def test_reserve_more_than_on_hand_fails_out_of_stock_and_changes_nothing(make_stock):
    stock = make_stock(2)
    order_id = uuid.uuid4()

    reservation = reserve(order_id, line(stock.product_id, 3))

    assert (reservation.status, reservation.failure_reason) == (ReservationStatus.FAILED, "out_of_stock")
    assert reservation.expires_at is None
    assert reservation.lines.count() == 0
    assert counts(stock) == (2, 0, 0)
    assert [e.event_type for e in OutboxEvent.objects.all()] == ["inventory.reservation_failed"]
    assert published()[0] == {
        "order_id": str(order_id),
        "reason": "out_of_stock",
        "product_ids": [str(stock.product_id)],
    }


def test_reserve_is_all_or_nothing_when_one_line_is_short(make_stock):
    plenty, scarce, also_plenty = make_stock(10), make_stock(1), make_stock(10)

    reservation = reserve(
        None, line(plenty.product_id, 2), line(scarce.product_id, 2), line(also_plenty.product_id, 2)
    )

    assert reservation.status == ReservationStatus.FAILED
    assert [counts(stock) for stock in (plenty, scarce, also_plenty)] == [(10, 0, 0), (1, 0, 0), (10, 0, 0)]
    assert published("inventory.reservation_failed")[0]["product_ids"] == [str(scarce.product_id)]
    assert published("inventory.reserved") == []


def test_reserve_lists_every_short_product_sorted(make_stock):
    first, second = make_stock(0), make_stock(1)

    reserve(None, line(first.product_id, 1), line(second.product_id, 2))

    assert published()[0]["product_ids"] == sorted([str(first.product_id), str(second.product_id)])


def test_reserve_an_unknown_product_fails_unknown_product(make_stock):
    stock = make_stock(10)
    unknown = uuid.uuid4()

    reservation = reserve(None, line(stock.product_id, 1), line(unknown, 1))

    assert reservation.failure_reason == "unknown_product"
    assert counts(stock) == (10, 0, 0)
    assert published("inventory.reservation_failed")[0]["product_ids"] == [str(unknown)]


def test_unknown_product_takes_precedence_over_out_of_stock(make_stock):
    short = make_stock(0)
    unknown = uuid.uuid4()

    reserve(None, line(short.product_id, 5), line(unknown, 1))

    [event] = published()
    assert (event["reason"], event["product_ids"]) == ("unknown_product", [str(unknown)])


def test_reserving_the_same_order_twice_reserves_once_and_announces_once(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    first = reserve(order_id, line(stock.product_id, 3))

    second = reserve(order_id, line(stock.product_id, 3))

    assert second.pk == first.pk
    assert counts(stock) == (7, 3, 0)
    assert OutboxEvent.objects.count() == 1
    assert Reservation.objects.count() == 1


def test_a_failed_order_is_not_retried_by_a_duplicate_after_a_delivery(make_stock):
    """Once refused, an order stays refused: a late copy must not reserve and start a payment."""
    stock = make_stock(1)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 5))
    services.stock_adjust(product_id=stock.product_id, delta=10, reason="delivery")

    again = reserve(order_id, line(stock.product_id, 5))

    assert again.status == ReservationStatus.FAILED
    assert counts(stock) == (11, 0, 0)
    assert [e.event_type for e in OutboxEvent.objects.all()] == ["inventory.reservation_failed"]


@pytest.mark.parametrize(
    "lines",
    [
        None,
        "not a list",
        [],
        [{"product_id": "not-a-uuid", "quantity": 1}],
        [{"quantity": 1}],
        [{"product_id": str(uuid.uuid4()), "quantity": 0}],
        [{"product_id": str(uuid.uuid4()), "quantity": -2}],
        [{"product_id": str(uuid.uuid4()), "quantity": "2"}],
        [{"product_id": str(uuid.uuid4()), "quantity": 1.5}],
        ["a line that is a string"],
    ],
)
def test_reserve_refuses_malformed_lines_and_writes_nothing(lines):
    with pytest.raises(services.InvalidEventData):
        services.reservation_create(order_id=uuid.uuid4(), lines=lines)

    assert Reservation.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_reserve_a_huge_quantity_is_simply_out_of_stock(make_stock):
    stock = make_stock(10)

    reservation = reserve(None, line(stock.product_id, 10**12))

    assert reservation.failure_reason == "out_of_stock"
    assert counts(stock) == (10, 0, 0)


# Committing (order.confirmed)


def test_commit_moves_reserved_units_to_sold(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))

    reservation = services.reservation_commit(order_id=order_id)

    assert reservation.status == ReservationStatus.COMMITTED
    assert counts(stock) == (6, 0, 4)


def test_commit_twice_changes_nothing(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_commit(order_id=order_id)

    services.reservation_commit(order_id=order_id)

    assert counts(stock) == (6, 0, 4)


def test_commit_after_release_changes_nothing_and_warns(make_stock, caplog):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_release(order_id=order_id)

    with caplog.at_level(logging.WARNING, logger="inventory.services"):
        reservation = services.reservation_commit(order_id=order_id)

    assert reservation.status == ReservationStatus.RELEASED
    assert counts(stock) == (10, 0, 0)
    assert any("nothing committed" in record.getMessage() for record in caplog.records)


def test_commit_of_an_unknown_order_changes_nothing():
    assert services.reservation_commit(order_id=uuid.uuid4()) is None
    assert Reservation.objects.count() == 0


def test_commit_of_an_expired_reservation_sells_its_units(make_stock):
    """The payment won the race against the deadline: orders confirmed, so the units are sold."""
    stock = make_stock(5)
    order_id = uuid.uuid4()
    expire_now(reserve(order_id, line(stock.product_id, 2)))
    services.reservations_expire()

    assert services.reservation_commit(order_id=order_id).status == ReservationStatus.COMMITTED
    assert counts(stock) == (3, 0, 2)


# Releasing (payment.failed)


def test_release_puts_the_units_back_on_hand(make_stock):
    widget, gadget = make_stock(10), make_stock(5)
    order_id = uuid.uuid4()
    reserve(order_id, line(widget.product_id, 4), line(gadget.product_id, 5))

    reservation = services.reservation_release(order_id=order_id)

    assert reservation.status == ReservationStatus.RELEASED
    assert counts(widget) == (10, 0, 0)
    assert counts(gadget) == (5, 0, 0)


def test_release_twice_changes_nothing(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_release(order_id=order_id)
    reserve(None, line(stock.product_id, 3))  # someone else takes units meanwhile

    services.reservation_release(order_id=order_id)

    assert counts(stock) == (7, 3, 0)


def test_release_after_commit_changes_nothing(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_commit(order_id=order_id)

    reservation = services.reservation_release(order_id=order_id)

    assert reservation.status == ReservationStatus.COMMITTED
    assert counts(stock) == (6, 0, 4)


def test_release_of_an_unknown_order_leaves_no_row():
    assert services.reservation_release(order_id=uuid.uuid4()) is None
    assert Reservation.objects.count() == 0


def test_release_publishes_nothing(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))

    services.reservation_release(order_id=order_id)

    assert [e.event_type for e in OutboxEvent.objects.all()] == ["inventory.reserved"]


# Cancelling (order.cancelled): release, return or tombstone


def test_cancel_of_a_held_reservation_releases_it(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))

    assert services.reservation_cancel(order_id=order_id).status == ReservationStatus.RELEASED
    assert counts(stock) == (10, 0, 0)


def test_cancel_of_an_expired_reservation_releases_it(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    expire_now(reserve(order_id, line(stock.product_id, 4)))
    services.reservations_expire()

    assert services.reservation_cancel(order_id=order_id).status == ReservationStatus.RELEASED
    assert counts(stock) == (10, 0, 0)


def test_cancel_of_a_committed_reservation_returns_the_sold_units(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_commit(order_id=order_id)

    reservation = services.reservation_cancel(order_id=order_id)

    assert reservation.status == ReservationStatus.RETURNED
    assert counts(stock) == (10, 0, 0)


def test_cancel_twice_returns_once(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_commit(order_id=order_id)
    services.reservation_cancel(order_id=order_id)

    services.reservation_cancel(order_id=order_id)

    assert counts(stock) == (10, 0, 0)
    assert Reservation.objects.get().status == ReservationStatus.RETURNED


def test_commit_after_return_changes_nothing(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 4))
    services.reservation_commit(order_id=order_id)
    services.reservation_cancel(order_id=order_id)

    services.reservation_commit(order_id=order_id)

    assert counts(stock) == (10, 0, 0)


def test_cancel_before_reservation_leaves_a_tombstone_that_a_late_order_created_respects(make_stock):
    stock = make_stock(10)
    order_id = uuid.uuid4()

    tombstone = services.reservation_cancel(order_id=order_id)
    late = reserve(order_id, line(stock.product_id, 4))

    assert tombstone.status == ReservationStatus.TOMBSTONE
    assert tombstone.expires_at is None
    assert late.pk == tombstone.pk
    assert late.status == ReservationStatus.TOMBSTONE
    assert late.lines.count() == 0
    assert counts(stock) == (10, 0, 0)
    assert OutboxEvent.objects.count() == 0  # neither reserved nor failed: the order is already over


def test_cancel_of_a_failed_reservation_changes_nothing(make_stock):
    stock = make_stock(1)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 2))

    assert services.reservation_cancel(order_id=order_id).status == ReservationStatus.FAILED
    assert counts(stock) == (1, 0, 0)


# Expiry sweep


def test_the_sweep_expires_due_reservations_once_and_keeps_their_units_reserved(make_stock):
    stock = make_stock(10)
    due, not_due = reserve(None, line(stock.product_id, 2)), reserve(None, line(stock.product_id, 3))
    expire_now(due)
    OutboxEvent.objects.all().delete()

    assert services.reservations_expire() == 1
    assert services.reservations_expire() == 0

    due.refresh_from_db()
    not_due.refresh_from_db()
    assert (due.status, not_due.status) == (ReservationStatus.EXPIRED, ReservationStatus.HELD)
    assert counts(stock) == (5, 5, 0)  # units stay held until orders decides
    assert [e.event_type for e in OutboxEvent.objects.all()] == ["inventory.reservation_expired"]
    assert published() == [{"order_id": str(due.order_id), "reservation_id": str(due.id)}]


def test_the_sweep_leaves_settled_reservations_alone(make_stock):
    stock = make_stock(10)
    committed, released = uuid.uuid4(), uuid.uuid4()
    for order_id in (committed, released):
        expire_now(reserve(order_id, line(stock.product_id, 1)))
    services.reservation_commit(order_id=committed)
    services.reservation_release(order_id=released)
    services.reservation_cancel(order_id=uuid.uuid4())  # a tombstone, no deadline

    assert services.reservations_expire() == 0
    assert published("inventory.reservation_expired") == []


def test_the_sweep_works_in_batches_until_nothing_is_due(make_stock, monkeypatch):
    monkeypatch.setattr(services, "EXPIRY_BATCH_SIZE", 2)
    stock = make_stock(10)
    for _ in range(5):
        expire_now(reserve(None, line(stock.product_id, 1)))

    assert services.reservations_expire() == 5
    assert len(published("inventory.reservation_expired")) == 5
    assert Reservation.objects.filter(status=ReservationStatus.EXPIRED).count() == 5


def test_the_sweep_takes_an_explicit_now(make_stock):
    stock = make_stock(10)
    reservation = reserve(None, line(stock.product_id, 1))

    assert services.reservations_expire(now=reservation.expires_at - timedelta(seconds=1)) == 0
    assert services.reservations_expire(now=reservation.expires_at) == 1


# The invariant: on_hand + reserved + sold changes only through adjustments


def settle(order_id, step: str) -> None:
    if step == "expire":
        Reservation.objects.filter(order_id=order_id).update(expires_at=timezone.now())
        services.reservations_expire()
    else:
        getattr(services, f"reservation_{step}")(order_id=order_id)


@pytest.mark.parametrize(
    "steps",
    [
        [],
        ["commit"],
        ["release"],
        ["cancel"],
        ["commit", "cancel"],
        ["commit", "release"],
        ["release", "commit"],
        ["release", "cancel"],
        ["expire"],
        ["expire", "commit"],
        ["expire", "cancel"],
        ["expire", "release", "commit"],
        ["commit", "cancel", "commit", "release", "cancel"],
    ],
)
def test_on_hand_plus_reserved_plus_sold_is_constant_along_every_path(make_stock, steps):
    widget, gadget = make_stock(7), make_stock(4)
    order_id = uuid.uuid4()
    reserve(order_id, line(widget.product_id, 3), line(gadget.product_id, 4))
    reserve(None, line(widget.product_id, 5))  # refused: only 4 left

    for step in steps:
        settle(order_id, step)
        for stock, total in ((widget, 7), (gadget, 4)):
            on_hand, reserved, sold = counts(stock)
            assert on_hand + reserved + sold == total
            assert min(on_hand, reserved, sold) >= 0


def test_the_database_refuses_negative_counts_whatever_the_code_does(make_stock):
    stock = make_stock(1)

    for column in ("on_hand", "reserved", "sold"):
        with pytest.raises(IntegrityError), transaction.atomic():
            Stock.objects.filter(pk=stock.pk).update(**{column: -1})


# Adjustments


def test_adjust_adds_units_and_records_who_and_why(make_stock):
    stock = make_stock(5)

    adjusted = services.stock_adjust(
        product_id=stock.product_id, delta=12, reason="  delivery 118  ", actor_id="u-1", actor_email="s@x.io"
    )

    assert counts(adjusted) == (17, 0, 0)
    audit = StockAdjustment.objects.get()
    assert (audit.stock_id, audit.delta, audit.reason, audit.on_hand_after) == (
        stock.product_id,
        12,
        "delivery 118",
        17,
    )
    assert (audit.actor_id, audit.actor_email) == ("u-1", "s@x.io")


def test_adjust_removes_units_on_hand_down_to_zero(make_stock):
    stock = make_stock(5)

    services.stock_adjust(product_id=stock.product_id, delta=-5, reason="water damage")

    assert counts(stock) == (0, 0, 0)
    assert StockAdjustment.objects.get().on_hand_after == 0


def test_adjust_cannot_remove_reserved_units(make_stock):
    stock = make_stock(5)
    reserve(None, line(stock.product_id, 3))

    with pytest.raises(Conflict) as refused:
        services.stock_adjust(product_id=stock.product_id, delta=-3, reason="stock take")

    assert refused.value.code == "insufficient_stock"
    assert counts(stock) == (2, 3, 0)
    assert StockAdjustment.objects.count() == 0


@pytest.mark.parametrize(
    ("delta", "reason", "bad_fields"),
    [
        (0, "nothing", {"delta"}),
        (5, "", {"reason"}),
        (5, "   ", {"reason"}),
        (0, "", {"delta", "reason"}),
        (services.MAX_ADJUSTMENT + 1, "too many", {"delta"}),
        (True, "a boolean", {"delta"}),
        ("5", "a string", {"delta"}),
    ],
)
def test_adjust_validates_delta_and_reason(make_stock, delta, reason, bad_fields):
    stock = make_stock(5)

    with pytest.raises(DomainError) as refused:
        services.stock_adjust(product_id=stock.product_id, delta=delta, reason=reason)

    assert refused.value.code == "validation_error"
    assert set(refused.value.fields) == bad_fields
    assert counts(stock) == (5, 0, 0)
    assert StockAdjustment.objects.count() == 0


def test_adjust_refuses_more_units_than_a_product_may_hold(make_stock):
    stock = make_stock(services.MAX_STOCK_UNITS - 10)

    with pytest.raises(DomainError) as refused:
        services.stock_adjust(product_id=stock.product_id, delta=11, reason="too much")

    assert refused.value.code == "validation_error"
    assert counts(stock) == (services.MAX_STOCK_UNITS - 10, 0, 0)


def test_adjust_an_unknown_product_is_not_found():
    with pytest.raises(NotFound):
        services.stock_adjust(product_id=uuid.uuid4(), delta=1, reason="delivery")


def test_adjustments_are_the_only_change_of_the_total(make_stock):
    stock = make_stock(5)
    order_id = uuid.uuid4()
    reserve(order_id, line(stock.product_id, 2))
    services.reservation_commit(order_id=order_id)

    services.stock_adjust(product_id=stock.product_id, delta=4, reason="delivery")
    services.stock_adjust(product_id=stock.product_id, delta=-1, reason="breakage")

    on_hand, reserved, sold = counts(stock)
    assert (on_hand, reserved, sold) == (6, 0, 2)
    assert on_hand + reserved + sold == 5 + sum(StockAdjustment.objects.values_list("delta", flat=True))

"""inventory's writes. Handlers, views, admin actions and tasks call these; nothing else moves stock.

Every function keeps the invariant of docs/saga.md: per product, `on_hand + reserved + sold` changes
only through `stock_adjust`. Reservations are keyed by order id (unique), so every saga event about an
order is idempotent on its own, even when it arrives twice under different event ids, late or out of
order.

Locking: a reservation row is locked before the stock rows it touches, and stock rows are always
locked in product-id order. Two transactions therefore never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory import metrics
from inventory.models import Reservation, ReservationLine, ReservationStatus, Stock, StockAdjustment
from shared.messaging.events import publish_event
from shared.observability.metrics import count_after_commit
from shared.web.errors import Conflict, DomainError, NotFound

logger = logging.getLogger(__name__)

# Far below the 32-bit columns' limit, far above any real warehouse: a typo is refused, not stored.
MAX_STOCK_UNITS = 1_000_000_000
MAX_ADJUSTMENT = 1_000_000
EXPIRY_BATCH_SIZE = 200
EXPIRY_MAX_BATCHES = 50

# order.created fields that inventory.reserved carries on, so payments needs no other source.
ORDER_FACTS_PASSED_ON = ("user_id", "customer_email", "total", "currency", "payment_token")

# Statuses whose units are still counted in `reserved`.
UNITS_HELD = (ReservationStatus.HELD, ReservationStatus.EXPIRED)


class InvalidEventData(ValueError):
    """An event whose data can never be applied; raising it lets the message be dead-lettered."""


class ReservationFailure:
    UNKNOWN_PRODUCT = "unknown_product"
    OUT_OF_STOCK = "out_of_stock"


@dataclass(frozen=True)
class RequestedLine:
    product_id: uuid.UUID
    quantity: int


# --- stock rows ------------------------------------------------------------------------------------


@transaction.atomic
def stock_create(*, product_id: uuid.UUID | str, initial_stock: Any = 0, sku: str = "") -> tuple[Stock, bool]:
    """The stock row of a new product (`product.created`). An existing row is left untouched.

    Returns `(stock, created)`. Redelivered or repeated `product.created` events never reset the
    counts: units may have been reserved or sold in between.
    """
    product_uuid = _as_uuid(product_id, "product_id")
    units = _as_initial_stock(initial_stock)
    stock, created = Stock.objects.get_or_create(
        product_id=product_uuid, defaults={"on_hand": units, "sku": (sku or "")[:64]}
    )
    if created:
        logger.info("stock row created", extra={"product_id": str(product_uuid), "on_hand": units})
    else:
        logger.info("stock row exists; product.created ignored", extra={"product_id": str(product_uuid)})
    return stock, created


@transaction.atomic
def stock_mark_product_deleted(*, product_id: uuid.UUID | str) -> Stock | None:
    """Note that catalog deleted the product. Counts are kept: reservations may still settle on them."""
    product_uuid = _as_uuid(product_id, "product_id")
    updated = Stock.objects.filter(product_id=product_uuid, product_deleted_at__isnull=True).update(
        product_deleted_at=timezone.now(), updated_at=timezone.now()
    )
    if not updated:
        logger.info(
            "product.deleted for unknown or already deleted stock", extra={"product_id": str(product_uuid)}
        )
    return Stock.objects.filter(product_id=product_uuid).first()


@transaction.atomic
def stock_adjust(
    *,
    product_id: uuid.UUID | str,
    delta: int,
    reason: str,
    actor_id: str = "",
    actor_email: str = "",
) -> Stock:
    """Add (delivery) or remove (breakage, stock take) units on hand, recorded as a StockAdjustment.

    Only units on hand can be removed: reserved and sold units belong to orders. Raises NotFound for
    an unknown product, DomainError(validation_error) for a zero delta or an empty reason, and
    Conflict(insufficient_stock) when fewer units are on hand than `-delta`.
    """
    reason = (reason or "").strip()
    _validate_adjustment(delta=delta, reason=reason)
    stock = Stock.objects.select_for_update().filter(product_id=product_id).first()
    if stock is None:
        raise NotFound("No stock is recorded for this product.")
    if stock.on_hand + delta < 0:
        raise Conflict(
            f"Only {stock.on_hand} units are on hand; {-delta} cannot be removed.",
            code="insufficient_stock",
            fields={"delta": f"At least {-stock.on_hand} (the units on hand, negated)."},
        )
    if stock.total_units + delta > MAX_STOCK_UNITS:
        raise DomainError(
            "The request has invalid fields.",
            code="validation_error",
            fields={"delta": f"A product holds at most {MAX_STOCK_UNITS} units."},
        )
    stock.on_hand += delta
    stock.save(update_fields=["on_hand", "updated_at"])
    StockAdjustment.objects.create(
        stock=stock,
        delta=delta,
        reason=reason[:255],
        actor_id=actor_id[:64],
        actor_email=actor_email[:254],
        on_hand_after=stock.on_hand,
    )
    logger.info(
        "stock adjusted",
        extra={
            "product_id": str(stock.product_id),
            "delta": delta,
            "on_hand": stock.on_hand,
            "actor": actor_id,
        },
    )
    return stock


def _validate_adjustment(*, delta: int, reason: str) -> None:
    fields = {}
    if isinstance(delta, bool) or not isinstance(delta, int):
        fields["delta"] = "A whole number of units is required."
    elif delta == 0:
        fields["delta"] = "The change must not be zero."
    elif abs(delta) > MAX_ADJUSTMENT:
        fields["delta"] = f"At most {MAX_ADJUSTMENT} units per adjustment."
    if not reason:
        fields["reason"] = "A reason is required."
    if fields:
        raise DomainError("The request has invalid fields.", code="validation_error", fields=fields)


# --- reservations ----------------------------------------------------------------------------------


@transaction.atomic
def reservation_create(
    *, order_id: uuid.UUID | str, lines: Iterable[Mapping], order_facts: Mapping | None = None
) -> Reservation:
    """Reserve every line of an order, or nothing (`order.created`).

    Success: each product's `on_hand -= q, reserved += q`, a `held` reservation expiring after
    RESERVATION_TTL_SECONDS, and `inventory.reserved`. A product without a stock row fails the whole
    order with `unknown_product` (checked first), too few units on hand with `out_of_stock`: nothing
    moves, the reservation is recorded as `failed` and `inventory.reservation_failed` is published.

    An order that already has a reservation (a duplicate `order.created`, or a tombstone left by an
    earlier `order.cancelled`) is returned as it is and nothing is published.
    """
    order_uuid = _as_uuid(order_id, "order_id")
    requested = _requested_lines(lines)
    # The reservation row comes first: a concurrent duplicate waits on the unique order id, then finds it.
    reservation, created = Reservation.objects.select_for_update().get_or_create(
        order_id=order_uuid,
        defaults={
            "status": ReservationStatus.HELD,
            "expires_at": timezone.now() + timedelta(seconds=settings.RESERVATION_TTL_SECONDS),
        },
    )
    if not created:
        logger.info(
            "order already has a reservation; order.created ignored",
            extra={"order_id": str(order_uuid), "status": reservation.status},
        )
        return reservation
    stocks = _lock_stock(line.product_id for line in requested)
    failure = _shortfall(requested, stocks)
    if failure:
        return _record_failure(reservation, *failure)
    # Lines are what is actually held: a failed reservation has none.
    ReservationLine.objects.bulk_create(
        ReservationLine(reservation=reservation, product_id=line.product_id, quantity=line.quantity)
        for line in requested
    )
    for line in requested:
        _move_units(line.product_id, line.quantity, on_hand=-1, reserved=+1)
    publish_event("inventory.reserved", _reserved_payload(reservation, requested, order_facts or {}))
    _count_outcome("reserved")
    logger.info("order reserved", extra={"order_id": str(order_uuid), "reservation_id": str(reservation.id)})
    return reservation


def _shortfall(requested: list[RequestedLine], stocks: dict[uuid.UUID, Stock]) -> tuple[str, list] | None:
    unknown = [line.product_id for line in requested if line.product_id not in stocks]
    if unknown:
        return ReservationFailure.UNKNOWN_PRODUCT, unknown
    short = [line.product_id for line in requested if stocks[line.product_id].on_hand < line.quantity]
    if short:
        return ReservationFailure.OUT_OF_STOCK, short
    return None


def _record_failure(reservation: Reservation, reason: str, product_ids: list[uuid.UUID]) -> Reservation:
    reservation.status = ReservationStatus.FAILED
    reservation.failure_reason = reason
    reservation.expires_at = None
    reservation.save(update_fields=["status", "failure_reason", "expires_at", "updated_at"])
    publish_event(
        "inventory.reservation_failed",
        {
            "order_id": str(reservation.order_id),
            "reason": reason,
            "product_ids": sorted(str(product_id) for product_id in product_ids),
        },
    )
    _count_outcome("rejected")
    logger.info("reservation failed", extra={"order_id": str(reservation.order_id), "reason": reason})
    return reservation


def _reserved_payload(reservation: Reservation, requested: list[RequestedLine], order_facts: Mapping) -> dict:
    return {
        "order_id": str(reservation.order_id),
        "reservation_id": str(reservation.id),
        "expires_at": reservation.expires_at.isoformat(),
        **{key: order_facts.get(key) for key in ORDER_FACTS_PASSED_ON},
        "lines": [{"product_id": str(line.product_id), "quantity": line.quantity} for line in requested],
    }


@transaction.atomic
def reservation_commit(*, order_id: uuid.UUID | str) -> Reservation | None:
    """The order is confirmed (`order.confirmed`): its units move from reserved to sold.

    An expired reservation is committed too: the payment won the race and orders decided. Anything
    else (already committed, released, returned, a tombstone, none at all) changes nothing.
    """
    reservation = _locked_reservation(order_id)
    status = reservation.status if reservation else None
    if status == ReservationStatus.COMMITTED:
        logger.info("order already committed", extra={"order_id": str(order_id)})
        return reservation
    if status not in UNITS_HELD:
        # A confirmed order whose units were released or never reserved: orders and inventory disagree.
        logger.warning(
            "order.confirmed for an order whose units are not held; nothing committed",
            extra={"order_id": str(order_id), "status": status},
        )
        return reservation
    _settle(reservation, ReservationStatus.COMMITTED, reserved=-1, sold=+1)
    return reservation


@transaction.atomic
def reservation_release(*, order_id: uuid.UUID | str) -> Reservation | None:
    """The payment failed (`payment.failed`): held units go back on hand.

    Only a held or expired reservation is released; a committed one stays sold (only the owner's
    cancellation returns it), and anything already settled changes nothing.
    """
    reservation = _locked_reservation(order_id)
    if reservation is None or reservation.status not in UNITS_HELD:
        logger.info(
            "nothing to release",
            extra={"order_id": str(order_id), "status": getattr(reservation, "status", None)},
        )
        return reservation
    _settle(reservation, ReservationStatus.RELEASED, reserved=-1, on_hand=+1)
    return reservation


@transaction.atomic
def reservation_cancel(*, order_id: uuid.UUID | str) -> Reservation:
    """The order is cancelled (`order.cancelled`): release, return, or leave a tombstone.

    Held or expired units go back on hand (`released`); a committed order's sold units are returned
    (`returned`); an order not reserved yet gets a `tombstone`, so a late `order.created` reserves
    nothing and publishes nothing. Settled reservations change nothing.
    """
    order_uuid = _as_uuid(order_id, "order_id")
    reservation, created = Reservation.objects.select_for_update().get_or_create(
        order_id=order_uuid, defaults={"status": ReservationStatus.TOMBSTONE}
    )
    if created:
        logger.info(
            "order cancelled before it was reserved; tombstone left", extra={"order_id": str(order_uuid)}
        )
    elif reservation.status in UNITS_HELD:
        _settle(reservation, ReservationStatus.RELEASED, reserved=-1, on_hand=+1)
    elif reservation.status == ReservationStatus.COMMITTED:
        _settle(reservation, ReservationStatus.RETURNED, sold=-1, on_hand=+1)
    else:
        logger.info(
            "cancelled order already settled",
            extra={"order_id": str(order_uuid), "status": reservation.status},
        )
    return reservation


@transaction.atomic
def reservations_expire_batch(*, now: datetime | None = None, batch_size: int = EXPIRY_BATCH_SIZE) -> int:
    """Mark up to `batch_size` held reservations past their deadline `expired`, announcing each.

    The units stay reserved: orders decides (order.cancelled releases them, order.confirmed commits
    them if the payment won). Rows locked by a concurrent handler are skipped, not waited for; the
    next sweep sees them if they are still held.
    """
    now = now or timezone.now()
    due = list(
        Reservation.objects.select_for_update(skip_locked=True)
        .filter(status=ReservationStatus.HELD, expires_at__lte=now)
        .order_by("expires_at")[:batch_size]
    )
    for reservation in due:
        reservation.status = ReservationStatus.EXPIRED
        reservation.save(update_fields=["status", "updated_at"])
        publish_event(
            "inventory.reservation_expired",
            {"order_id": str(reservation.order_id), "reservation_id": str(reservation.id)},
        )
        _count_outcome("expired")
        logger.info("reservation expired", extra={"order_id": str(reservation.order_id)})
    return len(due)


def reservations_expire(*, now: datetime | None = None) -> int:
    """The beat sweep: expire due reservations batch by batch, each batch its own short transaction."""
    expired = 0
    for _ in range(EXPIRY_MAX_BATCHES):
        count = reservations_expire_batch(now=now)
        expired += count
        if count < EXPIRY_BATCH_SIZE:
            break
    return expired


# --- helpers ---------------------------------------------------------------------------------------


def _locked_reservation(order_id: uuid.UUID | str) -> Reservation | None:
    return Reservation.objects.select_for_update().filter(order_id=_as_uuid(order_id, "order_id")).first()


def _lock_stock(product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Stock]:
    """Lock the stock rows in product-id order, the one order every transaction uses."""
    rows = Stock.objects.select_for_update().filter(product_id__in=set(product_ids)).order_by("product_id")
    return {stock.product_id: stock for stock in rows}


def _settle(reservation: Reservation, status: str, **moves: int) -> None:
    """Move every line's units as `moves` says (column -> +1/-1 per unit) and set the new status."""
    lines = list(reservation.lines.all())
    _lock_stock(line.product_id for line in lines)
    for line in lines:
        _move_units(line.product_id, line.quantity, **moves)
    previous = reservation.status
    reservation.status = status
    reservation.save(update_fields=["status", "updated_at"])
    _count_outcome(str(status))  # committed, released or returned
    logger.info(
        "reservation settled",
        extra={"order_id": str(reservation.order_id), "from_status": previous, "to_status": status},
    )


def _count_outcome(outcome: str) -> None:
    count_after_commit(metrics.RESERVATIONS, outcome=outcome)


def _move_units(product_id: uuid.UUID, quantity: int, **moves: int) -> None:
    """One UPDATE with column arithmetic; the check constraints refuse any count going negative."""
    changes = {column: F(column) + sign * quantity for column, sign in moves.items()}
    Stock.objects.filter(product_id=product_id).update(**changes, updated_at=timezone.now())


def _requested_lines(lines: Iterable[Mapping]) -> list[RequestedLine]:
    """Validated lines, one per product (quantities of a repeated product added up), in request order."""
    if isinstance(lines, str | bytes) or not isinstance(lines, Iterable):
        raise InvalidEventData("lines must be a list")
    quantities: dict[uuid.UUID, int] = {}
    for line in lines:
        if not isinstance(line, Mapping):
            raise InvalidEventData("each line must be an object")
        product_id = _as_uuid(line.get("product_id"), "product_id")
        quantities[product_id] = quantities.get(product_id, 0) + _as_quantity(line.get("quantity"))
    if not quantities:
        raise InvalidEventData("an order has at least one line")
    return [
        RequestedLine(product_id=product_id, quantity=quantity) for product_id, quantity in quantities.items()
    ]


def _as_uuid(value: Any, name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidEventData(f"{name} must be a UUID, not {value!r}") from exc


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventData(f"{name} must be an integer, not {value!r}")
    return value


def _as_initial_stock(value: Any) -> int:
    units = _as_int(value, "initial_stock")
    if not 0 <= units <= MAX_STOCK_UNITS:
        raise InvalidEventData(f"initial_stock out of range: {units}")
    return units


def _as_quantity(value: Any) -> int:
    # No upper bound here: more than is on hand is an ordinary out_of_stock, not a broken event.
    quantity = _as_int(value, "quantity")
    if quantity < 1:
        raise InvalidEventData(f"quantity must be positive, not {quantity}")
    return quantity

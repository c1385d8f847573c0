"""orders' writes: placing orders, the status machine of docs/saga.md, the product read model,
idempotency keys and carts. Views, handlers, tasks and admin actions call these; nothing else writes.

Over 500 lines on purpose: the platform's convention is one `services.py` per service, the single place
its writes live; the sections below (placing, the status machine, the read model, idempotency keys,
carts) each keep to their own part of it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders import cart, clients, metrics, selectors
from orders.clients import CatalogUnavailable, ProductInfo
from orders.models import (
    TERMINAL_STATUSES,
    IdempotencyRecord,
    IdempotencyState,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
    ProductReadModel,
    StatusReason,
)
from shared.contracts import published_version
from shared.contracts.events import order_created_v1_to_v2
from shared.messaging.events import publish_event
from shared.observability.metrics import count_after_commit, observe_after_commit
from shared.web.errors import Conflict, DomainError, NotFound, Unprocessable

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
MAX_LINES = 50
MAX_QUANTITY = 1000
MAX_TOTAL = Decimal("9999999999.99")  # what DecimalField(max_digits=12, decimal_places=2) holds

REJECTION_REASONS = (StatusReason.OUT_OF_STOCK, StatusReason.UNKNOWN_PRODUCT)
PAYMENT_FAILURE_REASONS = (
    StatusReason.PAYMENT_DECLINED,
    StatusReason.PAYMENT_UNAVAILABLE,
    StatusReason.PAYMENT_TIMEOUT,
)
UNPAID = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)
CANCELLABLE_BY_CUSTOMER = (*UNPAID, OrderStatus.CONFIRMED)


def money(value: Decimal) -> str:
    """Money on the wire: a string with two decimals."""
    return str(value.quantize(CENT))


# Placing an order


@dataclass(frozen=True)
class LineRequest:
    product_id: uuid.UUID
    quantity: int


def order_create(
    *,
    user_id: uuid.UUID,
    customer_email: str,
    lines: list[LineRequest],
    payment_token: str,
    shipping_address: dict,
) -> Order:
    """Price the lines and place a `pending` order; `order.created` starts the saga (inventory next).

    Prices come from catalog in one request, or from the product read model when catalog cannot
    answer. Unknown or inactive products (or, with catalog down, products the read model lacks) are
    refused with `unknown_product`. The catalog call comes first, so no transaction waits on HTTP.
    """
    _check_lines(lines)
    products = products_verified([line.product_id for line in lines])
    currencies = {products[line.product_id].currency for line in lines}
    if len(currencies) > 1:
        raise DomainError(
            "The products are priced in different currencies; order them separately.",
            code="currency_mismatch",
            fields={"currencies": sorted(currencies)},
        )
    total = sum((products[line.product_id].price * line.quantity for line in lines), Decimal("0"))
    if total > MAX_TOTAL:
        raise DomainError("The order total is too large.", code="order_too_large")
    return _order_insert(
        user_id=user_id,
        customer_email=customer_email,
        lines=lines,
        products=products,
        total=total.quantize(CENT),
        currency=currencies.pop(),
        payment_token=payment_token,
        shipping_address=shipping_address,
    )


def _check_lines(lines: list[LineRequest]) -> None:
    """The API validates first; this keeps every other caller to the same rules."""
    problems = []
    if not 1 <= len(lines) <= MAX_LINES:
        problems.append(f"An order has 1 to {MAX_LINES} lines.")
    if len({line.product_id for line in lines}) != len(lines):
        problems.append("Each product may appear only once.")
    if any(not 1 <= line.quantity <= MAX_QUANTITY for line in lines):
        problems.append(f"Quantities are 1 to {MAX_QUANTITY}.")
    if problems:
        raise DomainError(
            "The request has invalid fields.", code="validation_error", fields={"items": problems}
        )


def products_verified(product_ids: list[uuid.UUID]) -> dict[uuid.UUID, ProductInfo]:
    """The products, each known and active: from catalog, or from the read model if catalog is down."""
    try:
        products = clients.catalog_products(product_ids)
        verified_by_catalog = True
    except CatalogUnavailable as exc:
        logger.warning("catalog unavailable; pricing from the read model", extra={"reason": str(exc)})
        products = selectors.read_model_products(product_ids)
        verified_by_catalog = False
    refused = [pid for pid in product_ids if pid not in products or not products[pid].is_active]
    if refused:
        if verified_by_catalog or all(pid in products for pid in refused):
            message = "These products do not exist or are no longer sold."
        else:
            message = "The catalog is unavailable and these products could not be verified; try again later."
        raise DomainError(
            message, code="unknown_product", fields={"product_ids": sorted(str(pid) for pid in refused)}
        )
    return products


@transaction.atomic
def _order_insert(
    *,
    user_id: uuid.UUID,
    customer_email: str,
    lines: list[LineRequest],
    products: dict[uuid.UUID, ProductInfo],
    total: Decimal,
    currency: str,
    payment_token: str,
    shipping_address: dict,
) -> Order:
    now = timezone.now()
    order = Order.objects.create(
        user_id=user_id,
        customer_email=customer_email,
        status=OrderStatus.PENDING,
        total=total,
        currency=currency,
        payment_token=payment_token,
        shipping_address=shipping_address,
        created_at=now,
        updated_at=now,
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            product_id=line.product_id,
            name=products[line.product_id].name,
            unit_price=products[line.product_id].price,
            quantity=line.quantity,
        )
        for line in lines
    )
    OrderStatusChange.objects.create(order=order, status=OrderStatus.PENDING, at=now)
    version = published_version("order.created")
    publish_event("order.created", _order_created_data(order, version=version), version=version)
    count_after_commit(metrics.ORDERS_CREATED)
    logger.info("order created", extra={"order_id": str(order.id), "total": money(order.total)})
    return order


def _order_created_data(order: Order, *, version: int) -> dict:
    """order.created in the version this service publishes (EVENT_VERSIONS): version 2 carries money as
    `{amount, currency}` objects (shared.contracts.events)."""
    data = {
        "order_id": str(order.id),
        "user_id": str(order.user_id),
        "customer_email": order.customer_email,
        "lines": _lines_payload(order),
        "total": money(order.total),
        "currency": order.currency,
        "payment_token": order.payment_token,
    }
    return order_created_v1_to_v2(data) if version == 2 else data


def _lines_payload(order: Order) -> list[dict]:
    return [
        {
            "product_id": str(item.product_id),
            "name": item.name,
            "unit_price": money(item.unit_price),
            "quantity": item.quantity,
        }
        for item in order.items.order_by("id")
    ]


# The status machine (docs/saga.md): compare-and-set only; a CAS that matches nothing changes nothing.


def _transition(
    *,
    order_id: uuid.UUID,
    to: OrderStatus,
    allowed_from: Iterable[OrderStatus],
    reason: str = "",
    actor_id: uuid.UUID | None = None,
) -> tuple[Order, str] | None:
    """Move the order to `to` if its status is one of `allowed_from`; record the history row (with
    `actor_id`, identity's id of the person who asked, when a person did).

    Returns the updated order and the status it left, or None if the CAS matched nothing (a late or
    duplicate event, or an order we do not have). Runs in the caller's transaction.
    """
    # The row lock only tells us which status the CAS moves from (order.cancelled carries it);
    # the UPDATE's WHERE clause is what decides.
    previous = Order.objects.select_for_update().filter(id=order_id).values_list("status", flat=True).first()
    now = timezone.now()
    changes: dict[str, Any] = {"status": to, "status_reason": reason, "updated_at": now}
    if to in (OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED):
        changes["terminal_at"] = now
    if to == OrderStatus.CONFIRMED:
        changes["confirmed_at"] = now
    moved = Order.objects.filter(id=order_id, status__in=list(allowed_from)).update(**changes)
    if not moved:
        logger.info(
            "status change refused: the order is elsewhere (late or duplicate event)",
            extra={"order_id": str(order_id), "status": previous, "wanted": str(to)},
        )
        return None
    OrderStatusChange.objects.create(order_id=order_id, status=to, reason=reason, at=now, actor_id=actor_id)
    logger.info(
        "order status changed",
        extra={
            "order_id": str(order_id),
            "from": previous,
            "to": str(to),
            "reason": reason,
            "actor_id": str(actor_id or ""),
        },
    )
    order = Order.objects.get(id=order_id)
    if to in TERMINAL_STATUSES:
        _count_terminal(order, previous=previous, at=now)
    return order, previous


def _count_terminal(order: Order, *, previous: str, at: datetime) -> None:
    """Every terminal transition counts; the saga's duration ends at the first (a confirmed order
    cancelled later by its owner is counted as cancelled, but its saga ended when it was confirmed)."""
    count_after_commit(metrics.ORDERS_TERMINAL, status=str(order.status), reason=str(order.status_reason))
    if previous not in TERMINAL_STATUSES:
        seconds = (at - order.created_at).total_seconds()
        observe_after_commit(metrics.SAGA_DURATION, seconds, status=str(order.status))


@transaction.atomic
def order_mark_awaiting_payment(*, order_id: uuid.UUID) -> Order | None:
    """Stock is reserved (`inventory.reserved`): pending -> awaiting_payment."""
    moved = _transition(
        order_id=order_id, to=OrderStatus.AWAITING_PAYMENT, allowed_from=[OrderStatus.PENDING]
    )
    return moved[0] if moved else None


@transaction.atomic
def order_reject(*, order_id: uuid.UUID, reason: str) -> Order | None:
    """Stock could not be reserved: pending -> rejected, and `order.rejected`."""
    reason = _known_reason(reason, REJECTION_REASONS, default=StatusReason.OUT_OF_STOCK, order_id=order_id)
    moved = _transition(
        order_id=order_id, to=OrderStatus.REJECTED, allowed_from=[OrderStatus.PENDING], reason=reason
    )
    if not moved:
        return None
    order = moved[0]
    publish_event(
        "order.rejected",
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": order.customer_email,
            "reason": order.status_reason,
        },
    )
    return order


@transaction.atomic
def order_confirm(*, order_id: uuid.UUID) -> Order | None:
    """Paid: pending or awaiting_payment -> confirmed, and `order.confirmed`.

    From pending too: `payment.succeeded` may overtake `inventory.reserved` on the way here.
    """
    moved = _transition(order_id=order_id, to=OrderStatus.CONFIRMED, allowed_from=UNPAID)
    if not moved:
        return None
    order = moved[0]
    publish_event(
        "order.confirmed",
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": order.customer_email,
            "total": money(order.total),
            "currency": order.currency,
            "lines": _lines_payload(order),
        },
    )
    return order


@transaction.atomic
def order_cancel_unpaid(*, order_id: uuid.UUID, reason: str) -> Order | None:
    """The payment failed or the reservation expired: an unpaid order -> cancelled, `order.cancelled`."""
    reason = _known_reason(
        reason, PAYMENT_FAILURE_REASONS, default=StatusReason.PAYMENT_DECLINED, order_id=order_id
    )
    return _cancel(order_id=order_id, allowed_from=UNPAID, reason=reason)


@transaction.atomic
def order_cancel(*, order_id: uuid.UUID, actor_id: uuid.UUID | None = None, by_staff: bool = False) -> Order:
    """The owner cancels (`customer_cancelled`), or staff for them (`by_staff`: `staff_cancelled`):
    unpaid or confirmed -> cancelled. `actor_id`, identity's id of who asked, goes into the history.

    A confirmed order is refunded and its stock returned by payments and inventory, on
    `order.cancelled`. Raises Conflict(order_not_cancellable) for a rejected or cancelled order.
    """
    order = _cancel(
        order_id=order_id,
        allowed_from=CANCELLABLE_BY_CUSTOMER,
        reason=StatusReason.STAFF_CANCELLED if by_staff else StatusReason.CUSTOMER_CANCELLED,
        actor_id=actor_id,
    )
    if order is None:
        status = Order.objects.filter(id=order_id).values_list("status", flat=True).first()
        if status is None:
            raise NotFound("No such order.", code="not_found")
        raise Conflict(f"A {status} order cannot be cancelled.", code="order_not_cancellable")
    return order


def _cancel(
    *,
    order_id: uuid.UUID,
    allowed_from: Iterable[OrderStatus],
    reason: str,
    actor_id: uuid.UUID | None = None,
) -> Order | None:
    moved = _transition(
        order_id=order_id,
        to=OrderStatus.CANCELLED,
        allowed_from=allowed_from,
        reason=reason,
        actor_id=actor_id,
    )
    if not moved:
        return None
    order, previous_status = moved
    publish_event(
        "order.cancelled",
        {
            "order_id": str(order.id),
            "user_id": str(order.user_id),
            "customer_email": order.customer_email,
            "reason": order.status_reason,
            "previous_status": previous_status,
            "total": money(order.total),
            "currency": order.currency,
            "lines": _lines_payload(order),
        },
    )
    return order


@transaction.atomic
def order_mark_refunded(*, order_id: uuid.UUID) -> bool:
    """payments refunded the order: note when (once); the status does not change."""
    now = timezone.now()
    marked = Order.objects.filter(id=order_id, refunded_at__isnull=True).update(
        refunded_at=now, updated_at=now
    )
    if not marked:
        logger.info("refund already recorded or order unknown", extra={"order_id": str(order_id)})
    return bool(marked)


def _known_reason(reason: str, allowed: Iterable[str], *, default: str, order_id: uuid.UUID) -> str:
    """A reason outside the contract must not stall the saga: take the closest one, and say so."""
    if reason in allowed:
        return reason
    logger.warning(
        "unexpected status reason replaced",
        extra={"order_id": str(order_id), "reason": reason, "used": default},
    )
    return default


# The product read model, kept from catalog's events


@transaction.atomic
def product_read_model_apply(
    *,
    product_id: uuid.UUID,
    sku: str,
    name: str,
    price: Decimal,
    currency: str,
    is_active: bool,
    occurred_at: datetime,
) -> bool:
    """Record a product as `product.created`/`product.updated` describe it. False if the event is stale."""
    if _newer_version_stored(product_id, occurred_at):
        return False
    ProductReadModel.objects.update_or_create(
        product_id=product_id,
        defaults={
            "sku": sku,
            "name": name,
            "price": price,
            "currency": currency,
            "is_active": is_active,
            "updated_at": occurred_at,
        },
    )
    return True


@transaction.atomic
def product_read_model_deactivate(*, product_id: uuid.UUID, sku: str, occurred_at: datetime) -> bool:
    """`product.deleted`: the product is no longer sold. An unseen product leaves an inactive tombstone,
    so its late `product.created` cannot bring it back."""
    if _newer_version_stored(product_id, occurred_at):
        return False
    product, created = ProductReadModel.objects.get_or_create(
        product_id=product_id,
        defaults={"sku": sku, "price": Decimal("0.00"), "is_active": False, "updated_at": occurred_at},
    )
    if not created:
        product.is_active = False
        product.updated_at = occurred_at
        product.save(update_fields=["is_active", "updated_at"])
    return True


def _newer_version_stored(product_id: uuid.UUID, occurred_at: datetime) -> bool:
    stored_at = (
        ProductReadModel.objects.select_for_update()
        .filter(product_id=product_id)
        .values_list("updated_at", flat=True)
        .first()
    )
    if stored_at is not None and stored_at > occurred_at:
        logger.info("stale product event ignored", extra={"product_id": str(product_id)})
        return True
    return False


# Idempotency keys (Stripe semantics, per user)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def idempotent_call(
    *, user_id: uuid.UUID, key: str, fingerprint: str, run: Callable[[], StoredResponse]
) -> tuple[StoredResponse, bool]:
    """Run a request once per (user, key); returns its response and whether it is a replay.

    The same key with the same request replays the first response (an error response included);
    with another request it is `idempotency_key_reused` (422); while the first request still runs it
    is `idempotency_request_in_flight` (409). The response is stored in the transaction that made it,
    so either both the order and its stored response exist, or neither does. A `run` that raises
    (an unexpected error, nothing stored) frees the key for a retry.
    """
    claimed = idempotency_claim(user_id=user_id, key=key, fingerprint=fingerprint)
    if isinstance(claimed, StoredResponse):
        return claimed, True
    try:
        with transaction.atomic():
            response = run()
            _idempotency_complete(record=claimed, response=response)
    except Exception:
        idempotency_release(record=claimed)
        raise
    return response, False


@transaction.atomic
def idempotency_claim(
    *, user_id: uuid.UUID, key: str, fingerprint: str
) -> IdempotencyRecord | StoredResponse:
    """Record the key as in flight (committed at once, so a concurrent request sees it).

    Returns the claimed record, or the stored response of a completed request with the same key.
    """
    now = timezone.now()
    record, created = IdempotencyRecord.objects.get_or_create(
        user_id=user_id,
        key=key,
        defaults={"request_fingerprint": fingerprint, "created_at": now, "locked_at": now},
    )
    if created:
        return record
    record = IdempotencyRecord.objects.select_for_update().get(pk=record.pk)
    if record.created_at <= now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
        return _idempotency_restart(record, fingerprint=fingerprint, now=now)  # expired: the key is free
    if record.request_fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request.", code="idempotency_key_reused"
        )
    if record.state == IdempotencyState.COMPLETED:
        return StoredResponse(status=record.response_status, body=record.response_body)
    if record.locked_at > now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_request_in_flight",
        )
    # The first request died without an answer (its transaction rolled back): this one takes over.
    logger.warning("abandoned idempotency key taken over", extra={"idempotency_record": record.pk})
    record.locked_at = now
    record.save(update_fields=["locked_at"])
    return record


def _idempotency_restart(record: IdempotencyRecord, *, fingerprint: str, now: datetime) -> IdempotencyRecord:
    record.request_fingerprint = fingerprint
    record.state = IdempotencyState.IN_FLIGHT
    record.response_status = None
    record.response_body = None
    record.created_at = now
    record.locked_at = now
    record.save()
    return record


def _idempotency_complete(*, record: IdempotencyRecord, response: StoredResponse) -> None:
    completed = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyState.IN_FLIGHT, locked_at=record.locked_at
    ).update(state=IdempotencyState.COMPLETED, response_status=response.status, response_body=response.body)
    if not completed:  # a retry took the key over: its answer counts, this request's work rolls back
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_request_in_flight",
        )


@transaction.atomic
def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget an in-flight key whose request failed without an answer worth replaying."""
    IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyState.IN_FLIGHT, locked_at=record.locked_at
    ).delete()


@transaction.atomic
def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Delete idempotency records past their lifetime (24 h by default). Returns how many."""
    older_than = older_than or timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    if deleted:
        logger.info("idempotency records purged", extra={"count": deleted})
    return deleted


# Carts (Redis)


def cart_set_item(*, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> cart.Cart:
    """Put a product in the cart with this quantity (replacing the previous one). Refreshes the expiry."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(
            "The request has invalid fields.",
            code="validation_error",
            fields={"quantity": f"Quantities are 1 to {MAX_QUANTITY}."},
        )
    products_verified([product_id])
    if not cart.set_line(user_id, product_id, quantity):
        raise DomainError(f"A cart holds at most {cart.MAX_CART_ITEMS} products.", code="cart_full")
    return cart.read(user_id)


def cart_remove_item(*, user_id: uuid.UUID, product_id: uuid.UUID) -> None:
    """Take a product out of the cart (nothing happens if it is not there)."""
    cart.remove_line(user_id, product_id)


def cart_clear(*, user_id: uuid.UUID) -> None:
    """Empty the cart."""
    cart.clear(user_id)


def cart_checkout(
    *, user_id: uuid.UUID, customer_email: str, payment_token: str, shipping_address: dict
) -> Order:
    """Order what is in the cart, exactly like `order_create`. The ordered lines leave the cart only once
    the order is committed; a failed checkout leaves the cart as it was."""
    lines = cart.read(user_id).lines
    if not lines:
        raise DomainError("The cart is empty.", code="cart_empty")
    order = order_create(
        user_id=user_id,
        customer_email=customer_email,
        lines=[LineRequest(product_id=line.product_id, quantity=line.quantity) for line in lines],
        payment_token=payment_token,
        shipping_address=shipping_address,
    )
    # robust: the order is placed; a cart that could not be emptied must not turn that into an error.
    transaction.on_commit(partial(cart.remove_ordered, user_id, lines), robust=True)
    return order

"""catalog's writes. Views, the admin and the seed command call these; nothing else changes products.

Every product change is announced through the outbox (`product.created`, `product.updated`,
`product.deleted`, payloads as in docs/saga.md) and invalidates the cached product responses.
"""

from __future__ import annotations

import logging
import re
import uuid
from decimal import Decimal

from django.db import IntegrityError, transaction

from catalog.cache import invalidate_products
from catalog.models import CURRENCY, Category, Product
from shared.messaging.events import publish_event
from shared.web.errors import DomainError

logger = logging.getLogger(__name__)

SKU_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
MAX_PRICE = Decimal("9999999999.99")  # what DecimalField(max_digits=12, decimal_places=2) can hold
INVALID = "The request has invalid fields."


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(INVALID, code="validation_error", fields={field: message})


def normalize_sku(sku: str) -> str:
    """SKUs are case-insensitive codes: stored upper-case, so `kit-1` and `KIT-1` are one product."""
    normalized = sku.strip().upper()
    if not SKU_PATTERN.match(normalized):
        raise _invalid("sku", "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return normalized


def _checked_price(price: Decimal) -> Decimal:
    if not price.is_finite() or price <= 0:
        raise _invalid("price", "The price must be greater than zero.")
    if price.as_tuple().exponent < -2:
        raise _invalid("price", "The price has at most 2 decimal places.")
    if price > MAX_PRICE:
        raise _invalid("price", f"The price is at most {MAX_PRICE}.")
    return price.quantize(Decimal("0.01"))


def _sku_taken() -> DomainError:
    return _invalid("sku", "A product with this SKU already exists.")


def _ensure_sku_free(sku: str, *, except_id: uuid.UUID | None = None) -> None:
    if Product.objects.filter(sku=sku).exclude(pk=except_id).exists():
        raise _sku_taken()


def _save(product: Product, **save_options) -> None:
    """Save in a savepoint so that losing a race for the SKU is a validation error, not a 500."""
    try:
        with transaction.atomic():
            product.save(**save_options)
    except IntegrityError as exc:
        if Product.objects.filter(sku=product.sku).exclude(pk=product.pk).exists():
            raise _sku_taken() from exc
        raise


def product_event_data(product: Product) -> dict:
    """`product.created` / `product.updated` data (docs/saga.md); money as a two-decimal string."""
    return {
        "product_id": str(product.id),
        "sku": product.sku,
        "name": product.name,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "is_active": product.is_active,
        "category": product.category.slug,
    }


@transaction.atomic
def product_create(
    *,
    sku: str,
    name: str,
    category: Category,
    price: Decimal,
    description: str = "",
    initial_stock: int = 0,
    product_id: uuid.UUID | None = None,
) -> Product:
    """Create a product and announce `product.created` with its `initial_stock` (inventory's opening stock).

    `product_id` lets the seed command use stable ids; otherwise a random UUID is assigned.
    """
    if initial_stock < 0:
        raise _invalid("initial_stock", "The initial stock cannot be negative.")
    product = Product(
        id=product_id or uuid.uuid4(),
        sku=normalize_sku(sku),
        name=name,
        description=description,
        category=category,
        price=_checked_price(price),
        currency=CURRENCY,
    )
    _ensure_sku_free(product.sku)
    _save(product, force_insert=True)
    publish_event("product.created", {**product_event_data(product), "initial_stock": initial_stock})
    invalidate_products()
    logger.info("product created", extra={"product_id": str(product.id), "sku": product.sku})
    return product


@transaction.atomic
def product_update(
    *,
    product: Product,
    sku: str | None = None,
    name: str | None = None,
    description: str | None = None,
    category: Category | None = None,
    price: Decimal | None = None,
    is_active: bool | None = None,
) -> Product:
    """Change the given fields (None = leave as is) and announce `product.updated`.

    An update that changes nothing publishes nothing: events are facts, and there is no new fact.
    Setting `is_active` back to True is how a soft-deleted product returns.
    """
    product = Product.objects.select_related("category").select_for_update().get(pk=product.pk)
    changes = {
        "sku": None if sku is None else normalize_sku(sku),
        "name": name,
        "description": description,
        "category": category,
        "price": None if price is None else _checked_price(price),
        "is_active": is_active,
    }
    changed = [
        field for field, value in changes.items() if value is not None and getattr(product, field) != value
    ]
    if not changed:
        return product
    if "sku" in changed:
        _ensure_sku_free(changes["sku"], except_id=product.pk)
    for field in changed:
        setattr(product, field, changes[field])
    _save(product, update_fields=[*changed, "updated_at"])
    publish_event("product.updated", product_event_data(product))
    invalidate_products()
    logger.info("product updated", extra={"product_id": str(product.id), "fields": changed})
    return product


@transaction.atomic
def product_delete(*, product: Product) -> Product:
    """Soft delete: the product becomes inactive (orders keep referring to it) and `product.deleted`
    is announced. Deleting an inactive product again changes nothing and publishes nothing."""
    product = Product.objects.select_related("category").select_for_update().get(pk=product.pk)
    if not product.is_active:
        return product
    product.is_active = False
    product.save(update_fields=["is_active", "updated_at"])
    publish_event("product.deleted", {"product_id": str(product.id), "sku": product.sku})
    invalidate_products()
    logger.info("product deleted", extra={"product_id": str(product.id), "sku": product.sku})
    return product


@transaction.atomic
def category_create(*, name: str, slug: str) -> Category:
    """Create a category. Its slug is permanent: it appears in URLs and in every product event."""
    if Category.objects.filter(slug=slug).exists():
        raise _invalid("slug", "A category with this slug already exists.")
    return Category.objects.create(name=name, slug=slug)


@transaction.atomic
def category_rename(*, category: Category, name: str) -> Category:
    """Change a category's display name (the slug stays, so product events are unaffected)."""
    category.name = name
    category.save(update_fields=["name"])
    return category

"""Typed calls to other services, through shared's breaker-wrapped HTTP client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings

from shared.http import DownstreamUnavailable, service_client

logger = logging.getLogger(__name__)

CATALOG_PAGE_SIZE = 100  # more than an order's 50 lines: one page always answers


@dataclass(frozen=True)
class ProductInfo:
    """What an order needs to know of a product."""

    product_id: uuid.UUID
    sku: str
    name: str
    price: Decimal
    currency: str
    is_active: bool


class CatalogUnavailable(Exception):
    """catalog could not tell us about the products (down, circuit open, or an unusable answer)."""


def _catalog():
    return service_client(
        "catalog",
        settings.SERVICE_URLS["catalog"],
        read_timeout=1.0,
        attempts=2,
        fail_max=5,
        reset_timeout=10,
    )


def catalog_products(product_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProductInfo]:
    """The products catalog knows among `product_ids`, in ONE request. Raises CatalogUnavailable."""
    wanted = sorted({str(product_id) for product_id in product_ids})
    # Built by hand so the ids stay comma-separated (requests would encode the commas).
    path = f"/api/v1/products/?ids={','.join(wanted)}&page_size={CATALOG_PAGE_SIZE}"
    try:
        response = _catalog().get(path)
    except DownstreamUnavailable as exc:
        raise CatalogUnavailable(str(exc)) from exc
    if response.status_code != 200:
        logger.error("catalog refused a product lookup", extra={"status": response.status_code})
        raise CatalogUnavailable(f"catalog answered HTTP {response.status_code}")
    try:
        products = [_product_info(item) for item in response.json()["results"]]
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        logger.error("catalog answered an unreadable product list", exc_info=True)
        raise CatalogUnavailable("unreadable answer from catalog") from exc
    # Keep only what was asked: a catalog that ignored the filter must not price other products.
    return {product.product_id: product for product in products if str(product.product_id) in wanted}


def _product_info(item: dict) -> ProductInfo:
    price = Decimal(str(item["price"]))
    if not price.is_finite() or price < 0:
        raise ValueError(f"catalog sent an impossible price: {item['price']!r}")
    return ProductInfo(
        product_id=uuid.UUID(str(item["id"])),
        sku=str(item.get("sku", "")),
        name=str(item["name"]),
        price=price,
        currency=str(item.get("currency") or "USD"),
        is_active=bool(item.get("is_active", True)),
    )

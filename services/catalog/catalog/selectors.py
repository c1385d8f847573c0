"""catalog's reads."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, QuerySet

from catalog.models import SEARCH_CONFIG, Category, Product
from shared.replica.reads import lag_tolerant
from shared.web.errors import NotFound

# Public ordering names -> the columns they sort by; `id` last keeps pages stable between requests.
ORDERINGS = {
    "price": ("price", "name", "id"),
    "-price": ("-price", "name", "id"),
    "name": ("name", "id"),
    "-name": ("-name", "id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "id"),
}
DEFAULT_ORDERING = "name"
# Read-your-writes scope of every product write (catalog.cache): the product pages are cached for every
# reader, so after a write none may fill the cache from a replica that has not replayed it yet.
PRODUCT_WRITES = "products"


def _products() -> QuerySet[Product]:
    # The search vector is only ever used inside SQL; no need to ship it to Python with every row.
    return Product.objects.select_related("category").defer("search_vector")


def product_list(
    *,
    search: str = "",
    category_slug: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    ordering: str | None = None,
    ids: list[uuid.UUID] | None = None,
    include_inactive: bool = False,
) -> QuerySet[Product]:
    """Products matching every given filter.

    A search is ranked (name and SKU weigh more than the description) and sorted by rank unless an
    explicit `ordering` is asked for.
    """
    products = _products()
    if not include_inactive:
        products = products.filter(is_active=True)
    if ids is not None:
        products = products.filter(id__in=ids)
    if category_slug:
        products = products.filter(category__slug=category_slug)
    if min_price is not None:
        products = products.filter(price__gte=min_price)
    if max_price is not None:
        products = products.filter(price__lte=max_price)
    if search:
        query = SearchQuery(search, search_type="websearch", config=SEARCH_CONFIG)
        products = products.filter(search_vector=query).annotate(rank=SearchRank(F("search_vector"), query))
        if not ordering:
            return products.order_by("-rank", "name", "id")
    return products.order_by(*ORDERINGS[ordering or DEFAULT_ORDERING])


def product_list_lag_tolerant(**filters) -> QuerySet[Product]:
    """`product_list` for the listing and search pages: read where lag is tolerated (shared.replica), never
    behind a product write."""
    return lag_tolerant(product_list(**filters), after=(PRODUCT_WRITES,))


def _visible_products(include_inactive: bool) -> QuerySet[Product]:
    return _products() if include_inactive else _products().filter(is_active=True)


def _one_product(products: QuerySet[Product], product_id: uuid.UUID) -> Product:
    try:
        return products.get(pk=product_id)
    except Product.DoesNotExist:
        raise NotFound("No such product.") from None


def product_get(*, product_id: uuid.UUID, include_inactive: bool = False) -> Product:
    """One product; inactive ones only when asked for (staff). Raises NotFound."""
    return _one_product(_visible_products(include_inactive), product_id)


def product_get_lag_tolerant(*, product_id: uuid.UUID, include_inactive: bool = False) -> Product:
    """`product_get` for the product page: read where lag is tolerated, never behind a product write."""
    products = lag_tolerant(_visible_products(include_inactive), after=(PRODUCT_WRITES,))
    return _one_product(products, product_id)


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name", "id")


def category_list_lag_tolerant() -> QuerySet[Category]:
    """`category_list` for the public listing: read where lag is tolerated (shared.replica)."""
    return lag_tolerant(category_list())

"""Typed calls to other services, through shared's breaker-wrapped HTTP client."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.auth.client import ServiceTokenUnavailable, token_client
from shared.http import DownstreamUnavailable, service_client, service_url
from shared.saga import SAGA_SCOPE

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


# How orders calls each downstream. One client (and one breaker) per downstream, whatever the call: the
# first call in a process fixes a client's options, so they are declared here once.
_CLIENT_OPTIONS = {
    # Pricing an order waits on it: short, then the read model answers instead.
    "catalog": {"read_timeout": 1.0, "attempts": 2, "fail_max": 5, "reset_timeout": 10},
    # shared.http's defaults, as shared.auth.client asks identity for service tokens with them.
    "identity": {},
}
# The saga timeline's calls (an operator's page): a service peeks its dead-letter queue before answering.
_SAGA_CLIENT_OPTIONS = {"read_timeout": 5.0, "attempts": 2, "fail_max": 5, "reset_timeout": 10}


def _client(name: str):
    return service_client(name, service_url(name), **_CLIENT_OPTIONS.get(name, _SAGA_CLIENT_OPTIONS))


def _catalog():
    return _client("catalog")


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


# --- the saga timeline: every service's part of an order's saga ----------------------------------------

SAGA_PART_PATH = "/internal/v1/saga/{order_id}/"


@dataclass(frozen=True)
class SagaPartAnswer:
    """What one service said about an order's saga: its part (shared.saga's JSON), or why there is none."""

    service: str
    part: dict | None = None
    error: str = ""

    @property
    def available(self) -> bool:
        return self.part is not None


def saga_parts(*, order_id: uuid.UUID, services: Iterable[str]) -> dict[str, SagaPartAnswer]:
    """Each service's part of the order's saga, asked concurrently with orders' service token.

    Never raises: a service that does not answer, or answers something unusable, is an answer with an
    `error`, so one broken service cannot take the page down with it.
    """
    services = list(services)
    try:
        token_client(SAGA_SCOPE).token()  # once, before the threads, which then share it
    except ServiceTokenUnavailable as exc:
        return {service: SagaPartAnswer(service, error=f"no service token: {exc}") for service in services}
    with ThreadPoolExecutor(max_workers=max(len(services), 1), thread_name_prefix="saga-part") as pool:
        # Each thread runs in a copy of this context: the request's correlation id goes with its call.
        futures = {
            service: pool.submit(contextvars.copy_context().run, _saga_part, service, order_id)
            for service in services
        }
        return {service: future.result() for service, future in futures.items()}


def _saga_part(service: str, order_id: uuid.UUID) -> SagaPartAnswer:
    try:
        response = _ask_for_saga_part(service, order_id)
        if response.status_code == 401:  # identity's key may have changed since our token was issued
            token_client(SAGA_SCOPE).forget()
            response = _ask_for_saga_part(service, order_id)
    except (DownstreamUnavailable, ServiceTokenUnavailable) as exc:
        return SagaPartAnswer(service, error=str(exc))
    except Exception as exc:  # a bug must cost one service's part of the page, not the page
        logger.exception("saga part not read", extra={"downstream": service, "order_id": str(order_id)})
        return SagaPartAnswer(service, error=f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        logger.error("saga part refused", extra={"downstream": service, "status": response.status_code})
        return SagaPartAnswer(service, error=f"answered HTTP {response.status_code}")
    try:
        part = response.json()
    except ValueError:
        return SagaPartAnswer(service, error="answered something that is not JSON")
    problem = _saga_part_problem(part)
    if problem:
        logger.error("saga part unreadable", extra={"downstream": service, "problem": problem})
        return SagaPartAnswer(service, error=f"answered {problem}")
    return SagaPartAnswer(service, part=part)


def _saga_part_problem(part) -> str:
    """What makes an answer no saga part (shared.saga.api.SagaPartSerializer), or "" when it is one."""
    lists = ("consumes", "outbox", "inbox", "records")
    missing = {*lists, "dead_letters"} - set(part if isinstance(part, dict) else ())
    if missing:
        return f"without {', '.join(sorted(missing))}"
    if not all(isinstance(part[name], list) for name in lists):
        return "lists that are not lists"
    rows = [*part["outbox"], *part["inbox"], *part["records"]]
    dead = part["dead_letters"]
    if not all(isinstance(row, dict) for row in rows) or not isinstance(dead, dict):
        return "rows that are not objects"
    if not isinstance(dead.get("messages"), list) or not all(isinstance(m, dict) for m in dead["messages"]):
        return "dead letters that are not a list of objects"
    return ""


def _ask_for_saga_part(service: str, order_id: uuid.UUID):
    token = token_client(SAGA_SCOPE).token()
    return _client(service).get(
        SAGA_PART_PATH.format(order_id=order_id), headers={"Authorization": f"Bearer {token}"}
    )

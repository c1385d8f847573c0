"""What orders expects of catalog's priced lookup, as pact interactions (contracts/pacts/orders-catalog.json).

Shared by the consumer tests that record the pact (test_catalog_contract.py) and the check that
FakeCatalog honours it (test_fake_catalog_contract.py). catalog's own tests know the provider states
only by their names, which are the contract: renaming one here breaks catalog's verification.
"""

from __future__ import annotations

from pact import match

from orders import clients

CONSUMER = "orders"
PROVIDER = "catalog"
PRODUCTS_PATH = "/api/v1/products/"

# Provider states. "products exist" carries the products (id, sku, name, price, is_active) to create.
PRODUCTS_EXIST = "products exist"
NO_SUCH_PRODUCTS = "no product with these ids exists"
DATABASE_UNAVAILABLE = "catalog's database is unavailable"

# Fixed ids: the request names them, so the provider state must create exactly these.
PEN = {
    "id": "0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c01",
    "sku": "PACT-PEN",
    "name": "Pen",
    "price": "1.50",
    "is_active": True,
}
NOTEBOOK = {
    "id": "0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c02",
    "sku": "PACT-NOTEBOOK",
    "name": "Notebook",
    "price": "12.50",
    "is_active": True,
}
RETIRED_LAMP = {
    "id": "0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c03",
    "sku": "PACT-LAMP",
    "name": "Lamp",
    "price": "30.00",
    "is_active": False,
}
UNKNOWN_IDS = ["0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c04", "0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c05"]
OUTAGE_IDS = ["0d6b1c8e-3f7a-4c2e-9b1d-5a6f7e8d9c06"]

PRICED_LOOKUP = "a lookup of products catalog sells"
RETIRED_LOOKUP = "a lookup of a product catalog no longer sells"
UNKNOWN_LOOKUP = "a lookup of products catalog does not know"
OUTAGE_LOOKUP = "a lookup while catalog's database is unavailable"
INTERACTIONS = {PRICED_LOOKUP, RETIRED_LOOKUP, UNKNOWN_LOOKUP, OUTAGE_LOOKUP}


def lookup(pact, description: str, ids: list[str]):
    """The request orders' client sends for `ids`: one page, ids sorted and comma-separated."""
    return (
        pact.upon_receiving(description)
        .with_request("GET", PRODUCTS_PATH)
        .with_query_parameter("ids", ",".join(sorted(ids)))
        .with_query_parameter("page_size", str(clients.CATALOG_PAGE_SIZE))
    )


def product_like(product: dict) -> dict:
    """A product as orders reads it: its id and is_active exactly (orders decides on them), the rest by
    shape (a price is a decimal string with two decimals, a currency three capitals)."""
    return {
        "id": product["id"],
        "sku": match.str(product["sku"]),
        "name": match.str(product["name"]),
        "price": match.regex(product["price"], regex=r"^\d+\.\d{2}$"),
        "currency": match.regex("USD", regex=r"^[A-Z]{3}$"),
        "is_active": product["is_active"],
    }


def page_of(*products: dict) -> dict:
    """catalog's paginated list; `results` holds these products in any order, and nothing else counts."""
    results = match.array_containing([product_like(product) for product in products]) if products else []
    return {"count": len(products), "results": results}


ERROR_BODY = {"error": {"code": match.str("database_unavailable"), "message": match.str("Try again.")}}

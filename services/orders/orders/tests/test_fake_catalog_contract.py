"""FakeCatalog, the catalog most of orders' tests talk to, is checked against the committed pact.

The same Verifier that replays contracts/pacts/orders-catalog.json against the real catalog (in
catalog's tests) replays it here against the fake: if the fake answered something catalog does not
promise, orders' tests would pass against a catalog that does not exist. The fake is kept rather than
replaced by pact's mock server because its tests need state across requests (add products, then place
orders, carts, idempotent replays), which a mock server's fixed interactions cannot hold.
"""

from __future__ import annotations

import pytest

from orders.tests import catalog_contract as contract
from shared.pacts import ContractBroken, verify_pact


def fake_catalog_states(fake) -> dict:
    """The pact's provider states, set up on the fake the way its tests set it up."""

    def products_exist(action: str, parameters: dict) -> None:
        for product in parameters["products"]:
            if action == "setup":
                fake.add(
                    product_id=product["id"],
                    sku=product["sku"],
                    name=product["name"],
                    price=product["price"],
                    is_active=product["is_active"],
                )
            else:
                fake.products.pop(product["id"], None)

    def no_such_products(action: str, parameters: dict) -> None:
        assert not set(parameters["ids"]) & set(fake.products)

    def database_unavailable(action: str, parameters: dict) -> None:
        fake.answer_status = 503 if action == "setup" else 200

    return {
        contract.PRODUCTS_EXIST: products_exist,
        contract.NO_SUCH_PRODUCTS: no_such_products,
        contract.DATABASE_UNAVAILABLE: database_unavailable,
    }


def verify_fake(fake) -> None:
    verify_pact(
        consumer=contract.CONSUMER, provider=contract.PROVIDER, url=fake.url, states=fake_catalog_states(fake)
    )


def test_fake_catalog_answers_what_the_pact_says_catalog_answers(catalog):
    verify_fake(catalog)


def test_a_fake_that_drifts_from_the_pact_is_caught(catalog, monkeypatch):
    # The drift this check exists for: a fake that, unlike catalog, hides inactive products.
    real_answer = catalog.answer

    def answer_without_inactive(path):
        status, body = real_answer(path)
        if status == 200:
            body = {**body, "results": [p for p in body["results"] if p["is_active"]]}
            body["count"] = len(body["results"])
        return status, body

    monkeypatch.setattr(catalog, "answer", answer_without_inactive)

    with pytest.raises(ContractBroken) as broken:
        verify_fake(catalog)

    assert "a lookup of a product catalog no longer sells" in str(broken.value)

"""Consumer side of orders -> catalog: orders' real client against pact's mock server.

Each test states one answer catalog gives to the priced lookup, drives `clients.catalog_products`
against it and asserts what orders makes of it. A full run of this module rewrites
contracts/pacts/orders-catalog.json, which catalog's tests replay against the real catalog.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from functools import partial

import pytest

from orders import clients
from orders.tests import catalog_contract as contract
from shared.pacts import PactRecorder


@pytest.fixture(scope="module")
def recorder():
    recorder = PactRecorder(contract.CONSUMER, contract.PROVIDER, expected=contract.INTERACTIONS)
    yield recorder
    recorder.publish()


@pytest.fixture
def serve(recorder, settings):
    """`with serve(pact):` orders' catalog client talks to pact's mock server; the pact is recorded."""
    return partial(recorder.serving, settings=settings, downstream="catalog")


def ids(*products: dict) -> list[uuid.UUID]:
    return [uuid.UUID(product["id"]) for product in products]


def test_products_catalog_sells_are_priced_from_its_answer(recorder, serve):
    pact = recorder.pact()
    (
        contract.lookup(pact, contract.PRICED_LOOKUP, [contract.PEN["id"], contract.NOTEBOOK["id"]])
        .given(contract.PRODUCTS_EXIST, products=[contract.PEN, contract.NOTEBOOK])
        .will_respond_with(200)
        .with_body(contract.page_of(contract.PEN, contract.NOTEBOOK), content_type="application/json")
    )

    with serve(pact):
        products = clients.catalog_products(ids(contract.NOTEBOOK, contract.PEN))

    pen, notebook = (products[product_id] for product_id in ids(contract.PEN, contract.NOTEBOOK))
    assert set(products) == set(ids(contract.PEN, contract.NOTEBOOK))
    assert (pen.name, pen.price, pen.currency, pen.is_active) == ("Pen", Decimal("1.50"), "USD", True)
    assert (notebook.sku, notebook.price) == ("PACT-NOTEBOOK", Decimal("12.50"))


def test_a_product_catalog_no_longer_sells_is_still_answered_as_inactive(recorder, serve):
    pact = recorder.pact()
    (
        contract.lookup(pact, contract.RETIRED_LOOKUP, [contract.RETIRED_LAMP["id"]])
        .given(contract.PRODUCTS_EXIST, products=[contract.RETIRED_LAMP])
        .will_respond_with(200)
        .with_body(contract.page_of(contract.RETIRED_LAMP), content_type="application/json")
    )

    with serve(pact):
        products = clients.catalog_products(ids(contract.RETIRED_LAMP))

    # orders refuses it as `unknown_product` because of this flag, not because it is missing.
    [lamp] = products.values()
    assert (lamp.product_id, lamp.is_active) == (uuid.UUID(contract.RETIRED_LAMP["id"]), False)


def test_products_catalog_does_not_know_are_absent_from_the_answer(recorder, serve):
    pact = recorder.pact()
    (
        contract.lookup(pact, contract.UNKNOWN_LOOKUP, contract.UNKNOWN_IDS)
        .given(contract.NO_SUCH_PRODUCTS, ids=contract.UNKNOWN_IDS)
        .will_respond_with(200)
        .with_body(contract.page_of(), content_type="application/json")
    )

    with serve(pact):
        products = clients.catalog_products(uuid.UUID(product_id) for product_id in contract.UNKNOWN_IDS)

    assert products == {}


def test_catalog_without_its_database_answers_503_and_orders_falls_back(recorder, serve):
    pact = recorder.pact()
    (
        contract.lookup(pact, contract.OUTAGE_LOOKUP, contract.OUTAGE_IDS)
        .given(contract.DATABASE_UNAVAILABLE)
        .will_respond_with(503)
        .with_body(contract.ERROR_BODY, content_type="application/json")
    )

    # CatalogUnavailable is what sends order_create to its product read model.
    with serve(pact), pytest.raises(clients.CatalogUnavailable, match="HTTP 503"):
        clients.catalog_products(uuid.UUID(product_id) for product_id in contract.OUTAGE_IDS)

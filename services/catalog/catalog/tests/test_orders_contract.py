"""Provider side of orders -> catalog: the committed pact replayed against the real catalog.

contracts/pacts/orders-catalog.json is what orders' tests recorded of catalog's priced lookup. pact's
Verifier sends each of its requests to a live catalog (pytest-django's live_server: the real URLconf,
views and cache, on the test database) after the provider state it names was set up here. A change to
catalog that breaks what orders relies on fails this test with pact's report of what differs.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connections

from catalog import services
from catalog.api.serializers import ProductSerializer
from catalog.models import Product
from shared.pacts import ContractBroken, verify_pact

pytestmark = pytest.mark.django_db(transaction=True)


def _product_ids(parameters: dict) -> list[uuid.UUID]:
    return [uuid.UUID(product["id"]) for product in parameters["products"]]


def products_exist(category):
    """Creates the products the state names (through the service, as staff would), deletes them after."""

    def handler(action: str, parameters: dict) -> None:
        if action == "teardown":
            Product.objects.filter(id__in=_product_ids(parameters)).delete()
            return
        for wanted in parameters["products"]:
            product = services.product_create(
                product_id=uuid.UUID(wanted["id"]),
                sku=wanted["sku"],
                name=wanted["name"],
                category=category,
                price=Decimal(wanted["price"]),
            )
            if not wanted["is_active"]:
                services.product_delete(product=product)

    return handler


def no_such_products(action: str, parameters: dict) -> None:
    assert not Product.objects.filter(id__in=parameters["ids"]).exists()


@pytest.fixture
def database_outage():
    """A real outage for the live server: its next connections go to a port where no Postgres listens.

    Each of the live server's request threads opens its own connection from these settings (the test's
    own, already open, is untouched), so catalog meets a refused connection and answers as it would.
    """
    database = connections.settings["default"]
    real_port = database["PORT"]

    def handler(action: str, parameters: dict) -> None:
        database["PORT"] = "1" if action == "setup" else real_port  # 1: privileged, unused, refused at once

    yield handler
    database["PORT"] = real_port  # whatever became of the verification, the next test has its database


def closing_connections(handler):
    """pact calls state handlers in a thread of its own: its connection must not outlive the handler
    (an open session keeps the test database from being dropped at the end of the run)."""

    def handler_closing_connections(action: str, parameters: dict) -> None:
        try:
            handler(action, parameters)
        finally:
            connections.close_all()

    return handler_closing_connections


@pytest.fixture
def catalog_states(kitchen, database_outage) -> dict:
    states = {
        "products exist": products_exist(kitchen),
        "no product with these ids exists": no_such_products,
        "catalog's database is unavailable": database_outage,
    }
    return {name: closing_connections(handler) for name, handler in states.items()}


def verify_catalog(url: str, states: dict) -> None:
    verify_pact(consumer="orders", provider="catalog", url=url, states=states)


def test_catalog_answers_what_orders_expects(live_server, catalog_states):
    verify_catalog(live_server.url, catalog_states)


def test_a_catalog_that_stops_sending_prices_as_strings_fails_with_pact_report(
    live_server, catalog_states, monkeypatch
):
    # The mutation a well-meant refactor could make: prices as JSON numbers. orders would read 12.5
    # as a price it cannot trust, so the verification must fail and say where.
    real_to_representation = ProductSerializer.to_representation

    def price_as_number(self, instance):
        data = real_to_representation(self, instance)
        return {**data, "price": float(data["price"])}

    monkeypatch.setattr(ProductSerializer, "to_representation", price_as_number)

    with pytest.raises(ContractBroken) as broken:
        verify_catalog(live_server.url, catalog_states)

    report = str(broken.value)
    assert "a lookup of products catalog sells" in report
    assert "$.results" in report

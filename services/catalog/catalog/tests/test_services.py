"""catalog's service functions, selectors, read cache and seed command, called directly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from catalog import cache, selectors, services
from catalog.demo_data import CATEGORIES, PRODUCTS, demo_product_id
from catalog.models import Category, Product
from catalog.tests.helpers import UnreachableCache, outbox
from shared.messaging.models import OutboxEvent
from shared.web.errors import DomainError, NotFound

pytestmark = pytest.mark.django_db


def create(kitchen, **overrides) -> Product:
    fields = {
        "sku": "kettle-1",
        "name": "Electric Kettle",
        "description": "Boils water fast.",
        "category": kitchen,
        "price": Decimal("45.5"),
        "initial_stock": 30,
    }
    fields.update(overrides)
    return services.product_create(**fields)


# product_create


def test_product_create_stores_the_product_normalized(kitchen):
    product = create(kitchen)

    product.refresh_from_db()
    assert product.sku == "KETTLE-1"
    assert product.price == Decimal("45.50")
    assert product.currency == "USD"
    assert product.is_active is True
    assert product.category == kitchen


def test_product_create_publishes_exactly_one_product_created_event(kitchen):
    product = create(kitchen)

    [envelope] = outbox()
    assert envelope["type"] == "product.created"
    assert envelope["source"] == "catalog"
    assert envelope["data"] == {
        "product_id": str(product.id),
        "sku": "KETTLE-1",
        "name": "Electric Kettle",
        "price": "45.50",
        "currency": "USD",
        "is_active": True,
        "category": "kitchen",
        "initial_stock": 30,
    }


def test_product_create_uses_the_given_id(kitchen):
    product_id = uuid.uuid4()

    product = create(kitchen, product_id=product_id)

    assert product.id == product_id
    assert Product.objects.get(sku="KETTLE-1").id == product_id


def test_product_create_hands_the_event_to_the_relay_only_after_commit(
    kitchen, relayed_event_ids, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        create(kitchen)
        assert relayed_event_ids == []

    assert relayed_event_ids == [str(OutboxEvent.objects.get().id)]


@pytest.mark.parametrize(
    ("price", "message_part"),
    [
        (Decimal("0"), "greater than zero"),
        (Decimal("-1.00"), "greater than zero"),
        (Decimal("12.345"), "2 decimal places"),
        (Decimal("NaN"), "greater than zero"),
        (Decimal("10000000000.00"), "at most"),
    ],
)
def test_product_create_refuses_a_bad_price_and_writes_nothing(kitchen, price, message_part):
    with pytest.raises(DomainError) as refused:
        create(kitchen, price=price)

    assert refused.value.code == "validation_error"
    assert message_part in refused.value.fields["price"]
    assert Product.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_product_create_refuses_a_duplicate_sku_in_any_case(kitchen):
    create(kitchen)

    with pytest.raises(DomainError) as refused:
        create(kitchen, sku="  Kettle-1 ", name="Another kettle")

    assert set(refused.value.fields) == {"sku"}
    assert Product.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize("sku", ["", "  ", "has space", "ünïcode", "-LEADING-DASH", "X" * 65])
def test_product_create_refuses_a_malformed_sku(kitchen, sku):
    with pytest.raises(DomainError) as refused:
        create(kitchen, sku=sku)

    assert set(refused.value.fields) == {"sku"}
    assert Product.objects.count() == 0


def test_product_create_refuses_negative_initial_stock(kitchen):
    with pytest.raises(DomainError) as refused:
        create(kitchen, initial_stock=-1)

    assert set(refused.value.fields) == {"initial_stock"}
    assert Product.objects.count() == 0


# product_update


def test_product_update_changes_the_fields_and_publishes_product_updated(kitchen, books):
    product = create(kitchen)

    services.product_update(product=product, name="Gooseneck Kettle", price=Decimal("49"), category=books)

    product.refresh_from_db()
    assert (product.name, product.price, product.category) == ("Gooseneck Kettle", Decimal("49.00"), books)
    envelope = outbox("product.updated")[0]
    assert envelope["data"] == {
        "product_id": str(product.id),
        "sku": "KETTLE-1",
        "name": "Gooseneck Kettle",
        "price": "49.00",
        "currency": "USD",
        "is_active": True,
        "category": "books",
    }
    assert OutboxEvent.objects.count() == 2


def test_product_update_that_changes_nothing_publishes_nothing(kitchen):
    product = create(kitchen)

    services.product_update(product=product, name="Electric Kettle", price=Decimal("45.50"))

    assert OutboxEvent.objects.filter(event_type="product.updated").count() == 0


def test_product_update_to_a_taken_sku_is_refused_and_changes_nothing(kitchen):
    create(kitchen, sku="OTHER-1", name="Other")
    product = create(kitchen)

    with pytest.raises(DomainError) as refused:
        services.product_update(product=product, sku="other-1", name="Renamed")

    assert set(refused.value.fields) == {"sku"}
    product.refresh_from_db()
    assert (product.sku, product.name) == ("KETTLE-1", "Electric Kettle")
    assert OutboxEvent.objects.filter(event_type="product.updated").count() == 0


def test_product_update_can_reactivate_a_deleted_product(kitchen):
    product = services.product_delete(product=create(kitchen))

    services.product_update(product=product, is_active=True)

    product.refresh_from_db()
    assert product.is_active is True
    assert outbox("product.updated")[0]["data"]["is_active"] is True


# product_delete


def test_product_delete_is_a_soft_delete_announced_once(kitchen):
    product = create(kitchen)

    services.product_delete(product=product)
    services.product_delete(product=product)

    product.refresh_from_db()
    assert product.is_active is False
    assert [envelope["data"] for envelope in outbox("product.deleted")] == [
        {"product_id": str(product.id), "sku": "KETTLE-1"}
    ]


# categories


def test_category_create_refuses_a_taken_slug(kitchen):
    with pytest.raises(DomainError) as refused:
        services.category_create(name="Cooking", slug="kitchen")

    assert set(refused.value.fields) == {"slug"}
    assert Category.objects.count() == 1


# selectors: search


def test_search_ranks_a_name_match_above_a_description_match(kitchen):
    in_description = create(kitchen, sku="A-1", name="Pour-over stand", description="Holds a kettle steady.")
    in_name = create(kitchen, sku="B-1", name="Kettle", description="Boils water.")
    create(kitchen, sku="C-1", name="Toaster", description="Browns bread.")

    assert list(selectors.product_list(search="kettle")) == [in_name, in_description]


def test_search_matches_stemmed_words_and_the_sku(kitchen):
    lamps = create(kitchen, sku="LAMP-7", name="Desk lamps", description="")

    assert list(selectors.product_list(search="lamp")) == [lamps]
    assert list(selectors.product_list(search="lamp-7")) == [lamps]


def test_search_follows_changes_to_the_product(kitchen):
    product = create(kitchen, name="Kettle", description="")

    services.product_update(product=product, name="Teapot")

    assert list(selectors.product_list(search="kettle")) == []
    assert list(selectors.product_list(search="teapot")) == [product]


def test_search_with_an_explicit_ordering_ignores_the_rank(kitchen):
    in_description = create(kitchen, sku="A-1", name="Stand", description="For a kettle.", price=Decimal(5))
    in_name = create(kitchen, sku="B-1", name="Kettle", price=Decimal(50))

    assert list(selectors.product_list(search="kettle", ordering="price")) == [in_description, in_name]
    assert list(selectors.product_list(search="kettle", ordering="-price")) == [in_name, in_description]


def test_search_of_stop_words_only_finds_nothing(kitchen):
    create(kitchen, name="The kettle")

    assert list(selectors.product_list(search="the")) == []


def test_product_get_hides_inactive_products_unless_asked(kitchen):
    product = services.product_delete(product=create(kitchen))

    with pytest.raises(NotFound):
        selectors.product_get(product_id=product.id)
    assert selectors.product_get(product_id=product.id, include_inactive=True) == product


# read cache


def test_cached_computes_once_per_catalog_version():
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    assert cache.cached("key", compute) == ({"n": 1}, False)
    assert cache.cached("key", compute) == ({"n": 1}, True)

    cache.invalidate_products()

    assert cache.cached("key", compute) == ({"n": 2}, False)


def test_invalidation_bumps_the_version_again_after_commit(django_capture_on_commit_callbacks):
    start = cache.catalog_version()

    with django_capture_on_commit_callbacks(execute=True):
        cache.invalidate_products()
        assert cache.catalog_version() == start + 1

    assert cache.catalog_version() == start + 2


def test_cached_falls_back_to_computing_when_the_cache_is_down(monkeypatch):
    monkeypatch.setattr(cache, "cache", UnreachableCache())

    assert cache.cached("key", lambda: {"fresh": True}) == ({"fresh": True}, False)
    assert cache.cached("key", lambda: {"fresh": 2}) == ({"fresh": 2}, False)
    cache.invalidate_products()  # a write during the outage still succeeds


# seed


def seed() -> str:
    out = StringIO()
    call_command("seed", stdout=out)
    return out.getvalue()


def test_seed_creates_the_demo_catalog_with_stable_ids():
    output = seed()

    assert Category.objects.count() == len(CATEGORIES) == 6
    assert Product.objects.count() == len(PRODUCTS) == 50
    headphones = Product.objects.get(sku="ELEC-1001")
    assert (
        headphones.id
        == demo_product_id("ELEC-1001")
        == uuid.uuid5(
            uuid.uuid5(uuid.NAMESPACE_URL, "https://order-platform.example/catalog/products"), "ELEC-1001"
        )
    )
    assert "50 products created" in output


def test_seed_announces_each_product_with_its_initial_stock():
    seed()

    events = outbox("product.created")
    assert len(events) == 50
    stocks = {event["data"]["sku"]: event["data"]["initial_stock"] for event in events}
    assert stocks == {product.sku: product.initial_stock for product in PRODUCTS}
    assert all(20 <= stock <= 200 for stock in stocks.values())


def test_seed_twice_is_idempotent():
    seed()

    output = seed()

    assert Category.objects.count() == 6
    assert Product.objects.count() == 50
    assert OutboxEvent.objects.filter(event_type="product.created").count() == 50
    assert "0 products created, 50 already there" in output


def test_seed_leaves_products_staff_changed_alone():
    seed()
    headphones = Product.objects.get(sku="ELEC-1001")
    services.product_update(product=headphones, sku="ELEC-1001-B", price=Decimal("149.00"))

    seed()

    assert Product.objects.count() == 50
    headphones.refresh_from_db()
    assert (headphones.sku, headphones.price) == ("ELEC-1001-B", Decimal("149.00"))

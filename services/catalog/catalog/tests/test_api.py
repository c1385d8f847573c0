"""catalog's REST surface: listing, search, filters, bulk lookup, versions, staff writes, cache, errors."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import cache, services
from catalog.models import Product
from catalog.tests.helpers import UnreachableCache, assert_error, outbox
from shared.messaging.models import OutboxEvent

V1 = "/api/v1/products/"
V2 = "/api/v2/products/"
CATEGORIES_URL = "/api/v1/categories/"
SUCCESSOR = '</api/v2/products/>; rel="successor-version"'

pytestmark = pytest.mark.django_db


def detail(product_or_id, base: str = V1) -> str:
    return f"{base}{getattr(product_or_id, 'id', product_or_id)}/"


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [product["sku"] for product in response.json()["results"]]


def new_product_payload(**overrides) -> dict:
    payload = {
        "sku": "mug-01",
        "name": "Stoneware Mug",
        "description": "Holds 350 ml.",
        "category": "kitchen",
        "price": "12.50",
        "initial_stock": 40,
    }
    payload.update(overrides)
    return payload


# Reads: shapes


def test_product_detail_v1_has_the_contract_fields(api_client, make_product):
    product = make_product(sku="MUG-01", name="Mug", description="A mug.", price="12.5")

    response = api_client.get(detail(product))

    assert response.status_code == 200
    assert response.json() == {
        "id": str(product.id),
        "sku": "MUG-01",
        "name": "Mug",
        "description": "A mug.",
        "category": "kitchen",
        "price": "12.50",
        "currency": "USD",
        "is_active": True,
    }


def test_product_detail_v2_nests_the_price_with_its_currency(api_client, make_product):
    product = make_product(sku="MUG-01", name="Mug", description="A mug.", price="12.5")

    response = api_client.get(detail(product, V2))

    assert response.status_code == 200
    assert response.json() == {
        "id": str(product.id),
        "sku": "MUG-01",
        "name": "Mug",
        "description": "A mug.",
        "category": "kitchen",
        "price": {"amount": "12.50", "currency": "USD"},
        "is_active": True,
    }
    assert "Link" not in response


def test_product_list_v2_uses_the_v2_shape_and_v1_stays(api_client, make_product):
    make_product(price="3")

    v1 = api_client.get(V1).json()["results"][0]
    v2 = api_client.get(V2).json()["results"][0]

    assert (v1["price"], v1["currency"]) == ("3.00", "USD")
    assert v2["price"] == {"amount": "3.00", "currency": "USD"}
    assert "currency" not in v2
    assert {key: value for key, value in v1.items() if key not in ("price", "currency")} == {
        key: value for key, value in v2.items() if key != "price"
    }


def test_v1_responses_name_their_successor_version(api_client, make_product):
    product = make_product()

    assert api_client.get(V1)["Link"] == SUCCESSOR
    assert (
        api_client.get(detail(product))["Link"]
        == f'</api/v2/products/{product.id}/>; rel="successor-version"'
    )
    assert "Link" not in api_client.get(V2)


def test_v2_is_read_only(staff_client, make_product):
    product = make_product()

    assert_error(staff_client.post(V2, new_product_payload(), format="json"), 405, "method_not_allowed")
    assert_error(
        staff_client.patch(detail(product, V2), {"name": "x"}, format="json"), 405, "method_not_allowed"
    )
    assert Product.objects.count() == 1


def test_product_list_is_paginated(api_client, make_product):
    for _ in range(25):
        make_product()

    first = api_client.get(V1).json()
    second = api_client.get(V1, {"page": 2}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    assert first["next"].endswith(f"{V1}?page=2")
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert {p["sku"] for p in first["results"]}.isdisjoint({p["sku"] for p in second["results"]})


def test_a_page_past_the_end_is_404(api_client, make_product):
    make_product()

    assert_error(api_client.get(V1, {"page": 9}), 404, "not_found")


def test_unknown_product_is_404_in_the_error_shape(api_client):
    assert_error(api_client.get(detail(uuid.uuid4())), 404, "not_found")
    assert_error(api_client.get(detail(uuid.uuid4(), V2)), 404, "not_found")
    assert_error(api_client.get(f"{V1}not-a-uuid/"), 404, "not_found")


def test_categories_are_public_and_paginated(api_client, kitchen, books):
    response = api_client.get(CATEGORIES_URL)

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [{"name": "Books", "slug": "books"}, {"name": "Kitchen", "slug": "kitchen"}],
    }


# Reads: who sees inactive products


def test_inactive_products_are_hidden_from_customers(api_client, customer_client, make_product):
    make_product(sku="ON-1")
    retired = make_product(sku="OFF-1", is_active=False)

    assert skus(api_client.get(V1)) == ["ON-1"]
    assert skus(customer_client.get(V1)) == ["ON-1"]
    assert_error(api_client.get(detail(retired)), 404, "not_found")
    assert_error(customer_client.get(detail(retired)), 404, "not_found")
    assert_error(customer_client.get(detail(retired, V2)), 404, "not_found")


def test_staff_see_inactive_products(staff_client, make_product):
    make_product(sku="ON-1")
    retired = make_product(sku="OFF-1", is_active=False)

    assert sorted(skus(staff_client.get(V1))) == ["OFF-1", "ON-1"]
    response = staff_client.get(detail(retired))
    assert response.status_code == 200
    assert response.json()["is_active"] is False


def test_an_invalid_token_on_a_public_read_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert_error(api_client.get(V1), 401, "token_not_valid")


# Search, filters, ordering


def test_search_ranks_name_matches_above_description_matches(api_client, make_product):
    make_product(sku="DESC-1", name="Pour-over stand", description="Holds your kettle steady.")
    make_product(sku="NAME-1", name="Gooseneck Kettle", description="Precise pouring.")
    make_product(sku="NONE-1", name="Toaster", description="Browns bread.")

    assert skus(api_client.get(V1, {"search": "kettle"})) == ["NAME-1", "DESC-1"]


def test_search_finds_a_product_by_its_sku(api_client, make_product):
    make_product(sku="KTL-900", name="Kettle")
    make_product(sku="TST-100", name="Toaster")

    assert skus(api_client.get(V1, {"search": "ktl-900"})) == ["KTL-900"]


def test_search_with_an_ordering_sorts_by_it_instead_of_rank(api_client, make_product):
    make_product(sku="DESC-1", name="Stand", description="For a kettle.", price="5")
    make_product(sku="NAME-1", name="Kettle", price="50")

    assert skus(api_client.get(V1, {"search": "kettle", "ordering": "price"})) == ["DESC-1", "NAME-1"]


def test_search_never_shows_inactive_products_to_customers(api_client, make_product):
    make_product(sku="ON-1", name="Kettle")
    make_product(sku="OFF-1", name="Old Kettle", is_active=False)

    assert skus(api_client.get(V1, {"search": "kettle"})) == ["ON-1"]


def test_category_filter_uses_the_slug(api_client, make_product, books):
    make_product(sku="POT-1")
    make_product(sku="NOVEL-1", category=books)

    assert skus(api_client.get(V1, {"category": "books"})) == ["NOVEL-1"]
    assert skus(api_client.get(V1, {"category": "garden"})) == []


def test_price_filters_are_inclusive(api_client, make_product):
    for sku, price in (("CHEAP", "5.00"), ("MID-LOW", "10.00"), ("MID-HIGH", "20.00"), ("DEAR", "20.01")):
        make_product(sku=sku, price=price)

    response = api_client.get(V1, {"min_price": "10", "max_price": "20.00", "ordering": "price"})

    assert skus(response) == ["MID-LOW", "MID-HIGH"]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("price", ["B", "C", "A"]),
        ("-price", ["A", "C", "B"]),
        ("name", ["A", "B", "C"]),
        ("-name", ["C", "B", "A"]),
        ("created_at", ["A", "B", "C"]),
        ("-created_at", ["C", "B", "A"]),
    ],
)
def test_ordering(api_client, make_product, ordering, expected):
    make_product(sku="A", name="Apron", price="30")
    make_product(sku="B", name="Bowl", price="10")
    make_product(sku="C", name="Cup", price="20")

    assert skus(api_client.get(V1, {"ordering": ordering})) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ordering": "popularity"}, "ordering"),
        ({"min_price": "cheap"}, "min_price"),
        ({"max_price": "-1"}, "max_price"),
        ({"category": "not a slug!"}, "category"),
        ({"search": "x" * 201}, "search"),
    ],
)
def test_bad_query_parameters_are_a_validation_error_naming_them(api_client, params, field):
    error = assert_error(api_client.get(V1, params), 400, "validation_error")

    assert set(error["fields"]) == {field}


def test_a_price_range_with_its_bounds_crossed_finds_nothing(api_client, make_product):
    make_product(sku="A", price="25")

    response = api_client.get(V1, {"min_price": "30", "max_price": "20"})

    assert response.status_code == 200
    assert response.json()["results"] == []


# Bulk lookup by ids


def test_ids_returns_exactly_those_products_including_inactive_ones(api_client, make_product):
    wanted = make_product(sku="WANTED")
    retired = make_product(sku="RETIRED", is_active=False)
    make_product(sku="OTHER")

    response = api_client.get(V1, {"ids": f"{wanted.id},{retired.id},{uuid.uuid4()}"})

    body = response.json()
    assert body["count"] == 2
    by_sku = {product["sku"]: product for product in body["results"]}
    assert set(by_sku) == {"WANTED", "RETIRED"}
    assert by_sku["RETIRED"]["is_active"] is False
    assert by_sku["WANTED"]["price"] == "10.00"


def test_ids_answers_up_to_a_hundred_products_in_one_page(api_client, make_product):
    products = [make_product() for _ in range(30)]

    with CaptureQueriesContext(connection) as queries:
        body = api_client.get(V1, {"ids": ",".join(str(p.id) for p in products)}).json()

    assert body["count"] == 30
    assert len(body["results"]) == 30
    assert body["next"] is None
    assert len(queries) <= 2  # one count, one page: no query per product


def test_ids_ignores_duplicates_and_whitespace(api_client, make_product):
    product = make_product()

    body = api_client.get(V1, {"ids": f" {product.id} ,{product.id},"}).json()

    assert body["count"] == 1


@pytest.mark.parametrize(
    "ids",
    ["not-a-uuid", ",", ",".join(str(uuid.uuid4()) for _ in range(101))],
    ids=["malformed", "empty", "101"],
)
def test_bad_ids_are_a_validation_error(api_client, ids):
    error = assert_error(api_client.get(V1, {"ids": ids}), 400, "validation_error")

    assert set(error["fields"]) == {"ids"}


def test_ids_works_in_v2_too(api_client, make_product):
    product = make_product(price="7.5")

    body = api_client.get(V2, {"ids": str(product.id)}).json()

    assert body["results"][0]["price"] == {"amount": "7.50", "currency": "USD"}


# Writes: who may


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_anonymous_writes_are_401_and_change_nothing(api_client, make_product, method):
    product = make_product()
    url = V1 if method == "post" else detail(product)

    response = getattr(api_client, method)(url, new_product_payload(), format="json")

    assert_error(response, 401, "not_authenticated")
    assert Product.objects.count() == 1
    assert Product.objects.get().is_active is True
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_customer_writes_are_403_and_change_nothing(customer_client, make_product, method):
    product = make_product()
    url = V1 if method == "post" else detail(product)

    response = getattr(customer_client, method)(url, new_product_payload(), format="json")

    assert_error(response, 403, "permission_denied")
    assert Product.objects.count() == 1
    assert Product.objects.get().is_active is True
    assert OutboxEvent.objects.count() == 1


# Writes: create


def test_staff_create_returns_201_and_publishes_product_created(staff_client, kitchen):
    response = staff_client.post(V1, new_product_payload(), format="json")

    assert response.status_code == 201
    product = Product.objects.get()
    assert response.json() == {
        "id": str(product.id),
        "sku": "MUG-01",
        "name": "Stoneware Mug",
        "description": "Holds 350 ml.",
        "category": "kitchen",
        "price": "12.50",
        "currency": "USD",
        "is_active": True,
    }
    assert response["Link"] == SUCCESSOR
    [envelope] = outbox()
    assert envelope["type"] == "product.created"
    assert envelope["data"] == {
        "product_id": str(product.id),
        "sku": "MUG-01",
        "name": "Stoneware Mug",
        "price": "12.50",
        "currency": "USD",
        "is_active": True,
        "category": "kitchen",
        "initial_stock": 40,
    }


def test_create_without_initial_stock_announces_zero(staff_client, kitchen):
    payload = new_product_payload()
    del payload["initial_stock"], payload["description"]

    response = staff_client.post(V1, payload, format="json")

    assert response.status_code == 201
    assert response.json()["description"] == ""
    assert outbox()[0]["data"]["initial_stock"] == 0


def test_create_accepts_a_numeric_price(staff_client, kitchen):
    response = staff_client.post(V1, new_product_payload(price=9.9), format="json")

    assert response.status_code == 201
    assert response.json()["price"] == "9.90"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "12.345"}, "price"),
        ({"price": "twelve"}, "price"),
        ({"price": "1e30"}, "price"),
        ({"price": True}, "price"),
        ({"price": None}, "price"),
        ({"category": "garden"}, "category"),
        ({"category": 3}, "category"),
        ({"initial_stock": -1}, "initial_stock"),
        ({"initial_stock": 10**9}, "initial_stock"),
        ({"initial_stock": "lots"}, "initial_stock"),
        ({"currency": "EUR"}, "currency"),
        ({"sku": "has spaces"}, "sku"),
        ({"sku": ""}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": ["Mug"]}, "name"),
    ],
)
def test_create_with_an_invalid_field_names_it_and_writes_nothing(staff_client, kitchen, overrides, field):
    response = staff_client.post(V1, new_product_payload(**overrides), format="json")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {field}
    assert Product.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_create_without_fields_names_every_required_field(staff_client):
    error = assert_error(staff_client.post(V1, {}, format="json"), 400, "validation_error")

    assert set(error["fields"]) == {"sku", "name", "category", "price"}
    assert Product.objects.count() == 0


def test_create_with_a_duplicate_sku_is_a_clear_400(staff_client, kitchen, make_product):
    make_product(sku="MUG-01")

    response = staff_client.post(V1, new_product_payload(sku="mug-01"), format="json")

    error = assert_error(response, 400, "validation_error")
    assert error["fields"] == {"sku": ["A product with this SKU already exists."]}
    assert Product.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


def test_create_with_malformed_json_is_a_malformed_request(staff_client, kitchen):
    response = staff_client.post(V1, data='{"sku": ', content_type="application/json")

    assert_error(response, 400, "malformed_request")
    assert Product.objects.count() == 0


def test_create_with_a_non_object_body_is_a_validation_error(staff_client, kitchen):
    response = staff_client.post(V1, data="[1, 2]", content_type="application/json")

    assert_error(response, 400, "validation_error")
    assert Product.objects.count() == 0


# Writes: update


def test_staff_patch_changes_the_price_and_publishes_product_updated(staff_client, make_product):
    product = make_product(sku="MUG-01", name="Mug", price="12.50")

    response = staff_client.patch(detail(product), {"price": "14.00"}, format="json")

    assert response.status_code == 200
    assert response.json()["price"] == "14.00"
    assert response["Link"] == f'</api/v2/products/{product.id}/>; rel="successor-version"'
    [envelope] = outbox("product.updated")
    assert envelope["data"] == {
        "product_id": str(product.id),
        "sku": "MUG-01",
        "name": "Mug",
        "price": "14.00",
        "currency": "USD",
        "is_active": True,
        "category": "kitchen",
    }
    assert OutboxEvent.objects.count() == 2


def test_patch_with_the_same_values_publishes_nothing(staff_client, make_product):
    product = make_product(price="12.50")

    response = staff_client.patch(detail(product), {"price": "12.5"}, format="json")

    assert response.status_code == 200
    assert outbox("product.updated") == []


def test_put_replaces_the_product(staff_client, make_product, books):
    product = make_product(sku="MUG-01", name="Mug", description="Old text.", price="12.50")

    response = staff_client.put(
        detail(product),
        {"sku": "MUG-02", "name": "Big Mug", "category": "books", "price": "15"},
        format="json",
    )

    assert response.status_code == 200
    product.refresh_from_db()
    assert (product.sku, product.name, product.description, product.category, product.price) == (
        "MUG-02",
        "Big Mug",
        "",
        books,
        Decimal("15.00"),
    )
    assert len(outbox("product.updated")) == 1


def test_put_without_the_required_fields_is_400_and_changes_nothing(staff_client, make_product):
    product = make_product(name="Mug")

    error = assert_error(
        staff_client.put(detail(product), {"name": "Cup"}, format="json"), 400, "validation_error"
    )

    assert set(error["fields"]) == {"sku", "category", "price"}
    product.refresh_from_db()
    assert product.name == "Mug"
    assert outbox("product.updated") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [({"price": "-3"}, "price"), ({"category": "garden"}, "category"), ({"is_active": "maybe"}, "is_active")],
)
def test_patch_with_an_invalid_field_changes_nothing(staff_client, make_product, body, field):
    product = make_product(price="12.50")

    error = assert_error(staff_client.patch(detail(product), body, format="json"), 400, "validation_error")

    assert set(error["fields"]) == {field}
    product.refresh_from_db()
    assert (product.price, product.is_active) == (Decimal("12.50"), True)
    assert outbox("product.updated") == []


def test_patch_with_an_empty_body_is_400(staff_client, make_product):
    product = make_product()

    assert_error(staff_client.patch(detail(product), {}, format="json"), 400, "validation_error")


def test_patch_to_another_products_sku_is_400(staff_client, make_product):
    make_product(sku="TAKEN")
    product = make_product(sku="MINE")

    error = assert_error(
        staff_client.patch(detail(product), {"sku": "taken"}, format="json"), 400, "validation_error"
    )

    assert set(error["fields"]) == {"sku"}
    product.refresh_from_db()
    assert product.sku == "MINE"


def test_patch_of_an_unknown_product_is_404(staff_client, kitchen):
    assert_error(staff_client.patch(detail(uuid.uuid4()), {"name": "x"}, format="json"), 404, "not_found")


def test_staff_can_reactivate_a_deleted_product(staff_client, make_product):
    product = make_product(is_active=False)

    response = staff_client.patch(detail(product), {"is_active": True}, format="json")

    assert response.json()["is_active"] is True
    assert outbox("product.updated")[0]["data"]["is_active"] is True


# Writes: delete


def test_staff_delete_is_a_soft_delete_publishing_product_deleted(staff_client, api_client, make_product):
    product = make_product(sku="MUG-01")

    response = staff_client.delete(detail(product))

    assert response.status_code == 204
    product.refresh_from_db()
    assert product.is_active is False
    [envelope] = outbox("product.deleted")
    assert envelope["data"] == {"product_id": str(product.id), "sku": "MUG-01"}
    assert OutboxEvent.objects.count() == 2
    assert_error(api_client.get(detail(product)), 404, "not_found")


def test_deleting_twice_publishes_once(staff_client, make_product):
    product = make_product()

    assert staff_client.delete(detail(product)).status_code == 204
    assert staff_client.delete(detail(product)).status_code == 204

    assert len(outbox("product.deleted")) == 1


def test_delete_of_an_unknown_product_is_404(staff_client):
    assert_error(staff_client.delete(detail(uuid.uuid4())), 404, "not_found")


# Read cache


def test_a_second_list_read_is_served_from_the_cache(api_client, make_product):
    make_product(sku="MUG-01")
    first = api_client.get(V1)

    with CaptureQueriesContext(connection) as queries:
        second = api_client.get(V1)

    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert len(queries) == 0
    assert second.json() == first.json()
    assert second["Link"] == SUCCESSOR


def test_a_second_detail_read_is_served_from_the_cache(api_client, make_product, django_assert_num_queries):
    product = make_product()
    api_client.get(detail(product))

    with django_assert_num_queries(0):
        response = api_client.get(detail(product))

    assert response.status_code == 200
    assert response["X-Cache"] == "HIT"


def test_a_write_is_visible_at_once_despite_the_cache(
    api_client, staff_client, make_product, django_capture_on_commit_callbacks
):
    product = make_product(price="12.50")
    assert api_client.get(detail(product)).json()["price"] == "12.50"
    assert api_client.get(V1).json()["results"][0]["price"] == "12.50"

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.patch(detail(product), {"price": "14.00"}, format="json")

    fresh_detail = api_client.get(detail(product))
    fresh_list = api_client.get(V1)
    assert (fresh_detail["X-Cache"], fresh_detail.json()["price"]) == ("MISS", "14.00")
    assert (fresh_list["X-Cache"], fresh_list.json()["results"][0]["price"]) == ("MISS", "14.00")


def test_a_created_product_appears_in_a_cached_list_at_once(api_client, staff_client, kitchen):
    assert api_client.get(V1).json()["count"] == 0
    assert api_client.get(V1)["X-Cache"] == "HIT"

    staff_client.post(V1, new_product_payload(), format="json")

    assert api_client.get(V1).json()["count"] == 1


def test_a_deleted_product_disappears_from_cached_reads_at_once(api_client, staff_client, make_product):
    product = make_product()
    api_client.get(detail(product))
    api_client.get(V1)

    staff_client.delete(detail(product))

    assert_error(api_client.get(detail(product)), 404, "not_found")
    assert api_client.get(V1).json()["count"] == 0


def test_staff_and_customers_never_share_cache_entries(api_client, staff_client, make_product):
    make_product(sku="ON-1")
    make_product(sku="OFF-1", is_active=False)

    assert sorted(skus(staff_client.get(V1))) == ["OFF-1", "ON-1"]
    assert skus(api_client.get(V1)) == ["ON-1"]
    assert sorted(skus(staff_client.get(V1))) == ["OFF-1", "ON-1"]


def test_v1_and_v2_are_cached_apart(api_client, make_product):
    product = make_product(price="3")
    api_client.get(detail(product))

    assert api_client.get(detail(product, V2)).json()["price"] == {"amount": "3.00", "currency": "USD"}


def test_reads_still_work_when_the_cache_is_down(api_client, make_product, monkeypatch):
    product = make_product()
    monkeypatch.setattr(cache, "cache", UnreachableCache())

    response = api_client.get(detail(product))

    assert response.status_code == 200
    assert response["X-Cache"] == "MISS"
    services.product_update(product=product, name="Still writable")
    assert api_client.get(detail(product)).json()["name"] == "Still writable"


# Schema and admin


def test_the_openapi_schema_documents_the_ids_lookup(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    parameters = {p["name"]: p for p in schema["paths"][V1]["get"]["parameters"]}
    assert {"search", "category", "min_price", "max_price", "ordering", "ids", "page"} <= set(parameters)
    assert "inactive" in parameters["ids"]["description"]
    assert "/api/v2/products/{id}/" in schema["paths"]

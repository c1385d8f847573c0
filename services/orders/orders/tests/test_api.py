"""orders' REST surface: placing orders (validation, idempotency), reading, cancelling, the cart, admin."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from orders import cart, clients, services
from orders.api.idempotency import request_fingerprint
from orders.models import IdempotencyRecord, Order, OrderStatusChange, ProductReadModel
from orders.tests.helpers import (
    ADDRESS,
    CART_ITEMS_URL,
    CART_URL,
    CHECKOUT_URL,
    ORDERS_URL,
    assert_error,
    make_order,
    order_payload,
    order_url,
    outbox,
)
from shared.admin_ui.testing import admin_shadow_login
from shared.messaging.models import OutboxEvent
from shared.testing import wait_until

pytestmark = pytest.mark.django_db


def post_order(user, payload, **headers):
    return user.client().post(ORDERS_URL, payload, format="json", headers=headers)


def assert_nothing_written():
    assert Order.objects.count() == 0
    assert OrderStatusChange.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


# Placing an order


def test_post_order_answers_202_with_the_pending_order(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    book = catalog.add(name="Book", price="12.00")

    response = post_order(customer, order_payload((pen, 3), (book, 1)))

    assert response.status_code == 202, response.content
    body = response.json()
    order = Order.objects.get()
    assert body == {
        "id": str(order.id),
        "status": "pending",
        "status_reason": "",
        "items": [
            {"product_id": pen["id"], "name": "Pen", "unit_price": "1.50", "quantity": 3},
            {"product_id": book["id"], "name": "Book", "unit_price": "12.00", "quantity": 1},
        ],
        "total": "16.50",
        "currency": "USD",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "history": [{"status": "pending", "reason": "", "at": body["history"][0]["at"], "actor": None}],
    }
    datetime.fromisoformat(body["created_at"])
    assert "tok_visa" not in response.content.decode()
    assert (order.user_id, order.customer_email, order.shipping_address) == (
        customer.id,
        customer.email,
        ADDRESS,
    )
    assert outbox("order.created") == [
        {
            "order_id": str(order.id),
            "user_id": str(customer.id),
            "customer_email": "carla@example.com",
            "lines": [
                {"product_id": pen["id"], "name": "Pen", "unit_price": "1.50", "quantity": 3},
                {"product_id": book["id"], "name": "Book", "unit_price": "12.00", "quantity": 1},
            ],
            "total": "16.50",
            "currency": "USD",
            "payment_token": "tok_visa",
        }
    ]
    ids = ",".join(sorted([pen["id"], book["id"]]))
    assert catalog.requests == [f"/api/v1/products/?ids={ids}&page_size=100"]


def test_post_order_hands_the_event_to_the_relay_only_after_commit(
    catalog, customer, relayed_event_ids, django_capture_on_commit_callbacks
):
    pen = catalog.add(name="Pen", price="1.50")
    with django_capture_on_commit_callbacks(execute=True):
        post_order(customer, order_payload((pen, 1)))
        assert relayed_event_ids == []

    assert relayed_event_ids == [str(OutboxEvent.objects.get().id)]


def test_post_order_with_catalog_down_prices_from_the_read_model(customer):
    lamp = ProductReadModel.objects.create(
        product_id=uuid.uuid4(), sku="LAMP", name="Lamp", price=Decimal("30.00"), updated_at=timezone.now()
    )

    response = post_order(customer, order_payload(({"id": str(lamp.product_id)}, 2)))

    assert response.status_code == 202, response.content
    assert response.json()["total"] == "60.00"
    assert response.json()["items"][0]["name"] == "Lamp"


def test_post_order_with_catalog_down_and_an_unseen_product_is_refused(customer):
    product_id = str(uuid.uuid4())

    response = post_order(customer, order_payload(({"id": product_id}, 1)))

    error = assert_error(response, 400, "unknown_product")
    assert error["fields"] == {"product_ids": [product_id]}
    assert "could not be verified" in error["message"]
    assert_nothing_written()


@pytest.mark.parametrize("is_active", [False, None], ids=["inactive", "unknown"])
def test_post_order_with_a_product_catalog_does_not_sell_is_refused(catalog, customer, is_active):
    pen = catalog.add(name="Pen", price="1.50")
    refused = (
        catalog.add(name="Old", price="1.00", is_active=False)
        if is_active is False
        else {"id": str(uuid.uuid4())}
    )

    response = post_order(customer, order_payload((pen, 1), (refused, 1)))

    error = assert_error(response, 400, "unknown_product")
    assert error["fields"] == {"product_ids": [refused["id"]]}
    assert_nothing_written()


def _invalid_bodies():
    product = str(uuid.uuid4())

    def with_items(*items):
        return {"items": list(items), "payment_token": "tok_visa", "shipping_address": dict(ADDRESS)}

    def with_address(**changes):
        address = {**ADDRESS, **changes}
        return {**with_items({"product_id": product, "quantity": 1}), "shipping_address": address}

    def without(field):
        body = with_items({"product_id": product, "quantity": 1})
        body.pop(field)
        return body

    def line(quantity=1, product_id=product):
        return {"product_id": product_id, "quantity": quantity}

    address_without_city = {key: value for key, value in ADDRESS.items() if key != "city"}
    return {
        "no-items": (without("items"), "items"),
        "empty-items": (with_items(), "items"),
        "items-not-a-list": ({**with_items(), "items": "pen"}, "items"),
        "51-items": (with_items(*(line(product_id=str(uuid.uuid4())) for _ in range(51))), "items"),
        "quantity-zero": (with_items(line(0)), "items"),
        "quantity-negative": (with_items(line(-3)), "items"),
        "quantity-huge": (with_items(line(1001)), "items"),
        "quantity-string": (with_items(line("2")), "items"),
        "quantity-float": (with_items(line(2.5)), "items"),
        "quantity-bool": (with_items(line(True)), "items"),
        "quantity-null": (with_items(line(None)), "items"),
        "quantity-missing": (with_items({"product_id": product}), "items"),
        "product-id-not-uuid": (with_items(line(product_id="pen")), "items"),
        "product-id-number": (with_items(line(product_id=42)), "items"),
        "product-id-repeated": (with_items(line(), line(2)), "items"),
        "item-not-an-object": (with_items("pen"), "items"),
        "no-payment-token": (without("payment_token"), "payment_token"),
        "blank-payment-token": ({**with_items(line()), "payment_token": "  "}, "payment_token"),
        "long-payment-token": ({**with_items(line()), "payment_token": "t" * 101}, "payment_token"),
        "numeric-payment-token": ({**with_items(line()), "payment_token": 4242}, "payment_token"),
        "no-address": (without("shipping_address"), "shipping_address"),
        "address-not-an-object": (
            {**with_items(line()), "shipping_address": "1 Harbour St"},
            "shipping_address",
        ),
        "address-without-city": (
            {**with_items(line()), "shipping_address": address_without_city},
            "shipping_address",
        ),
        "address-blank-line1": (with_address(line1=""), "shipping_address"),
        "address-numeric-postal-code": (with_address(postal_code=1100), "shipping_address"),
        "address-null-country": (with_address(country=None), "shipping_address"),
    }


INVALID_BODIES = _invalid_bodies()


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_post_order_with_invalid_input_is_a_validation_error_and_writes_nothing(
    catalog, customer, body, field
):
    response = post_order(customer, body)

    error = assert_error(response, 400, "validation_error")
    assert field in error["fields"]
    assert_nothing_written()
    assert catalog.requests == []


@pytest.mark.parametrize(
    ("content", "code"),
    [('{"items": [', "malformed_request"), ("[1, 2]", "validation_error"), ("null", "validation_error")],
    ids=["malformed-json", "a-list", "null"],
)
def test_post_order_with_a_body_that_is_not_an_object_is_refused(customer, content, code):
    response = customer.client().post(ORDERS_URL, content, content_type="application/json")

    assert_error(response, 400, code)
    assert_nothing_written()


def test_post_order_without_a_token_is_401(catalog):
    pen = catalog.add(name="Pen", price="1.50")

    response = APIClient().post(ORDERS_URL, order_payload((pen, 1)), format="json")

    assert_error(response, 401, "not_authenticated")
    assert_nothing_written()


# Idempotency-Key


def test_the_same_key_and_body_replay_the_first_response(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    payload = order_payload((pen, 2))

    first = post_order(customer, payload, **{"Idempotency-Key": "order-attempt-1"})
    second = post_order(customer, payload, **{"Idempotency-Key": "order-attempt-1"})

    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    assert len(catalog.requests) == 1


def test_the_same_key_with_another_body_is_422(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    post_order(customer, order_payload((pen, 2)), **{"Idempotency-Key": "k1"})

    response = post_order(customer, order_payload((pen, 3)), **{"Idempotency-Key": "k1"})

    assert_error(response, 422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_the_same_key_while_the_first_request_is_in_flight_is_409(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    payload = order_payload((pen, 2))
    fingerprint = request_fingerprint(SimpleNamespace(path=ORDERS_URL, data=payload))
    services.idempotency_claim(user_id=customer.id, key="k1", fingerprint=fingerprint)

    response = post_order(customer, payload, **{"Idempotency-Key": "k1"})

    assert_error(response, 409, "idempotency_request_in_flight")
    assert Order.objects.count() == 0


def test_a_refused_request_is_replayed_as_refused(catalog, customer):
    unknown_id = str(uuid.uuid4())
    payload = order_payload(({"id": unknown_id}, 1))
    first = post_order(customer, payload, **{"Idempotency-Key": "k1"})
    catalog.products[unknown_id] = {"id": unknown_id, "name": "Late", "price": "1.00", "is_active": True}

    second = post_order(customer, payload, **{"Idempotency-Key": "k1"})

    assert_error(second, 400, "unknown_product")
    assert second.json() == first.json()
    assert Order.objects.count() == 0
    assert len(catalog.requests) == 1


def test_idempotency_keys_are_scoped_per_user(catalog, customer, other_customer):
    pen = catalog.add(name="Pen", price="1.50")

    first = post_order(customer, order_payload((pen, 1)), **{"Idempotency-Key": "shared"})
    second = post_order(other_customer, order_payload((pen, 1)), **{"Idempotency-Key": "shared"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 101, "with space"], ids=["empty", "too-long", "space"])
def test_an_invalid_idempotency_key_is_refused(catalog, customer, key):
    pen = catalog.add(name="Pen", price="1.50")

    response = post_order(customer, order_payload((pen, 1)), **{"Idempotency-Key": key})

    error = assert_error(response, 400, "validation_error")
    assert "Idempotency-Key" in error["fields"]
    assert_nothing_written()


def test_a_crashed_request_frees_its_key(catalog, customer, monkeypatch):
    pen = catalog.add(name="Pen", price="1.50")

    def crash(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(services, "order_create", crash)
    with pytest.raises(RuntimeError):
        post_order(customer, order_payload((pen, 1)), **{"Idempotency-Key": "k1"})
    monkeypatch.undo()

    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_retry_is_told_the_first_request_is_still_in_flight(catalog, customer, monkeypatch):
    """The in-flight record is committed before the order is priced, so another process sees it."""
    pen = catalog.add(name="Pen", price="1.50")
    payload = order_payload((pen, 1))
    release = threading.Event()
    pricing_started = threading.Event()
    catalog_products = clients.catalog_products

    def slow_catalog(product_ids):
        pricing_started.set()
        release.wait(timeout=10)
        return catalog_products(product_ids)

    monkeypatch.setattr(clients, "catalog_products", slow_catalog)
    first: list = []

    def place_first():
        try:
            first.append(post_order(customer, payload, **{"Idempotency-Key": "k1"}))
        finally:
            connection.close()

    thread = threading.Thread(target=place_first)
    thread.start()
    try:
        wait_until(pricing_started.is_set, message="the first request to price its order")
        retry = post_order(customer, payload, **{"Idempotency-Key": "k1"})
    finally:
        release.set()
        thread.join(timeout=10)

    assert_error(retry, 409, "idempotency_request_in_flight")
    assert first[0].status_code == 202
    replay = post_order(customer, payload, **{"Idempotency-Key": "k1"})
    assert (replay.status_code, replay.json()) == (202, first[0].json())
    assert Order.objects.count() == 1


# Reading orders


def test_get_order_shows_the_owner_their_order(customer):
    order = make_order(user_id=customer.id, status="awaiting_payment")

    response = customer.client().get(order_url(order.id))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(order.id)
    assert (body["status"], body["total"]) == ("awaiting_payment", "7.25")
    assert [change["status"] for change in body["history"]] == ["pending", "awaiting_payment"]
    assert "payment_token" not in body


def test_get_another_users_order_is_404(customer, other_customer):
    order = make_order(user_id=other_customer.id)

    assert_error(customer.client().get(order_url(order.id)), 404, "not_found")


def test_get_an_unknown_order_is_404(customer):
    assert_error(customer.client().get(order_url(uuid.uuid4())), 404, "not_found")
    assert_error(customer.client().get(f"{ORDERS_URL}not-a-uuid/"), 404, "not_found")


def test_staff_see_any_order(staff, customer):
    order = make_order(user_id=customer.id)

    assert staff.client().get(order_url(order.id)).status_code == 200


def test_list_orders_shows_only_the_users_own_newest_first(customer, other_customer):
    older = make_order(user_id=customer.id)
    newer = make_order(user_id=customer.id)
    Order.objects.filter(id=older.id).update(created_at=timezone.now() - timedelta(hours=1))
    make_order(user_id=other_customer.id)

    response = customer.client().get(ORDERS_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [result["id"] for result in body["results"]] == [str(newer.id), str(older.id)]


def test_staff_list_every_order_and_filter_by_status(staff, customer, other_customer):
    make_order(user_id=customer.id, status="confirmed")
    make_order(user_id=other_customer.id, status="confirmed")
    make_order(user_id=other_customer.id, status="pending")

    everything = staff.client().get(ORDERS_URL).json()
    confirmed = staff.client().get(ORDERS_URL, {"status": "confirmed"}).json()

    assert everything["count"] == 3
    assert confirmed["count"] == 2
    assert {result["status"] for result in confirmed["results"]} == {"confirmed"}


def test_list_orders_with_an_unknown_status_filter_is_400(customer):
    error = assert_error(customer.client().get(ORDERS_URL, {"status": "shipped"}), 400, "validation_error")
    assert "status" in error["fields"]


# Cancelling


@pytest.mark.parametrize("status", ["pending", "awaiting_payment", "confirmed"])
def test_the_owner_cancels_an_open_or_confirmed_order(customer, status):
    order = make_order(user_id=customer.id, status=status)

    response = customer.client().post(f"{order_url(order.id)}cancel/")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["status_reason"]) == ("cancelled", "customer_cancelled")
    assert body["history"][-1] == {
        "status": "cancelled",
        "reason": "customer_cancelled",
        "at": body["history"][-1]["at"],
        "actor": str(customer.id),
    }
    [cancelled] = outbox("order.cancelled")
    assert (cancelled["order_id"], cancelled["reason"], cancelled["previous_status"]) == (
        str(order.id),
        "customer_cancelled",
        status,
    )


@pytest.mark.parametrize("status", ["rejected", "cancelled"])
def test_cancelling_a_finished_order_is_409(customer, status):
    order = make_order(user_id=customer.id, status=status)

    response = customer.client().post(f"{order_url(order.id)}cancel/")

    assert_error(response, 409, "order_not_cancellable")
    assert OutboxEvent.objects.count() == 0


def test_cancelling_another_users_order_is_404(customer, other_customer):
    order = make_order(user_id=other_customer.id)

    assert_error(customer.client().post(f"{order_url(order.id)}cancel/"), 404, "not_found")
    order.refresh_from_db()
    assert order.status == "pending"


def test_staff_cancel_any_order_as_a_staff_cancel_recorded_with_their_identity_id(staff, customer):
    order = make_order(user_id=customer.id, status="confirmed")

    response = staff.client().post(f"{order_url(order.id)}cancel/")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["status_reason"]) == ("cancelled", "staff_cancelled")
    assert (body["history"][-1]["reason"], body["history"][-1]["actor"]) == ("staff_cancelled", str(staff.id))
    [cancelled] = outbox("order.cancelled")
    assert (cancelled["reason"], cancelled["previous_status"]) == ("staff_cancelled", "confirmed")
    # The customer sees who cancelled it in their order's history too.
    history = customer.client().get(order_url(order.id)).json()["history"]
    assert history[-1]["actor"] == str(staff.id)


def test_staff_cancelling_their_own_order_is_a_customer_cancel(staff):
    order = make_order(user_id=staff.id)

    body = staff.client().post(f"{order_url(order.id)}cancel/").json()

    assert (body["status_reason"], body["history"][-1]["actor"]) == ("customer_cancelled", str(staff.id))


# The cart


def add_to_cart(user, product_id, quantity):
    return user.client().post(CART_ITEMS_URL, {"product_id": product_id, "quantity": quantity}, format="json")


def test_an_empty_cart(customer):
    response = customer.client().get(CART_URL)

    assert response.status_code == 200
    assert response.json() == {"items": [], "expires_at": None}


def test_adding_removing_and_clearing_cart_items(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    book = catalog.add(name="Book", price="12.00")

    assert add_to_cart(customer, pen["id"], 2).status_code == 200
    response = add_to_cart(customer, book["id"], 1)
    add_to_cart(customer, pen["id"], 5)  # sets the quantity

    expected = sorted([(pen["id"], 5), (book["id"], 1)])
    assert [
        (i["product_id"], i["quantity"]) for i in customer.client().get(CART_URL).json()["items"]
    ] == expected
    assert response.json()["expires_at"] is not None

    assert customer.client().delete(f"{CART_ITEMS_URL}{pen['id']}/").status_code == 204
    assert customer.client().get(CART_URL).json()["items"] == [{"product_id": book["id"], "quantity": 1}]

    assert customer.client().delete(CART_URL).status_code == 204
    assert customer.client().get(CART_URL).json() == {"items": [], "expires_at": None}


def test_carts_are_per_user(catalog, customer, other_customer):
    pen = catalog.add(name="Pen", price="1.50")
    add_to_cart(customer, pen["id"], 2)

    assert other_customer.client().get(CART_URL).json()["items"] == []


def test_the_cart_expires_after_the_configured_time_refreshed_on_every_write(catalog, customer, settings):
    settings.CART_TTL_SECONDS = 120
    pen = catalog.add(name="Pen", price="1.50")
    redis = get_redis_connection("default")

    add_to_cart(customer, pen["id"], 1)
    assert 110 <= redis.ttl(cart.cart_key(customer.id)) <= 120
    redis.expire(cart.cart_key(customer.id), 5)
    response = add_to_cart(customer, pen["id"], 2)

    assert 110 <= redis.ttl(cart.cart_key(customer.id)) <= 120
    expires_in = datetime.fromisoformat(response.json()["expires_at"]) - timezone.now()
    assert timedelta(seconds=110) <= expires_in <= timedelta(seconds=120)


@pytest.mark.parametrize(
    "body",
    [
        {"product_id": "PRODUCT", "quantity": 0},
        {"product_id": "PRODUCT", "quantity": 1001},
        {"product_id": "PRODUCT", "quantity": "2"},
        {"product_id": "PRODUCT"},
        {"product_id": "pen", "quantity": 1},
        {"quantity": 1},
    ],
    ids=["zero", "huge", "string", "no-quantity", "bad-id", "no-id"],
)
def test_adding_an_invalid_cart_item_is_400_and_stores_nothing(catalog, customer, body):
    pen = catalog.add(name="Pen", price="1.50")
    body = {key: pen["id"] if value == "PRODUCT" else value for key, value in body.items()}

    response = customer.client().post(CART_ITEMS_URL, body, format="json")

    assert_error(response, 400, "validation_error")
    assert customer.client().get(CART_URL).json()["items"] == []


def test_adding_a_product_catalog_does_not_sell_is_refused(catalog, customer):
    retired = catalog.add(name="Old", price="1.00", is_active=False)

    assert_error(add_to_cart(customer, retired["id"], 1), 400, "unknown_product")
    assert_error(add_to_cart(customer, str(uuid.uuid4()), 1), 400, "unknown_product")
    assert customer.client().get(CART_URL).json()["items"] == []


def test_a_cart_holds_at_most_fifty_products(catalog, customer):
    for n in range(50):
        assert add_to_cart(customer, catalog.add(name=f"P{n}", price="1.00")["id"], 1).status_code == 200

    response = add_to_cart(customer, catalog.add(name="One too many", price="1.00")["id"], 1)

    assert_error(response, 400, "cart_full")
    assert len(customer.client().get(CART_URL).json()["items"]) == 50


# Checkout


def checkout(user, **headers):
    body = {"payment_token": "tok_visa", "shipping_address": dict(ADDRESS)}
    return user.client().post(CHECKOUT_URL, body, format="json", headers=headers)


def test_checkout_orders_the_cart_and_empties_it_after_commit(
    catalog, customer, django_capture_on_commit_callbacks
):
    pen = catalog.add(name="Pen", price="1.50")
    book = catalog.add(name="Book", price="12.00")
    add_to_cart(customer, pen["id"], 2)
    add_to_cart(customer, book["id"], 1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = checkout(customer)
        assert len(customer.client().get(CART_URL).json()["items"]) == 2  # not before the commit
    for callback in callbacks:
        callback()

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["total"] == "15.00"
    assert sorted((item["product_id"], item["quantity"]) for item in body["items"]) == sorted(
        [(pen["id"], 2), (book["id"], 1)]
    )
    assert outbox("order.created")[0]["order_id"] == body["id"]
    assert customer.client().get(CART_URL).json()["items"] == []


def test_checkout_keeps_a_line_changed_while_the_order_was_placed(
    catalog, customer, django_capture_on_commit_callbacks
):
    pen = catalog.add(name="Pen", price="1.50")
    book = catalog.add(name="Book", price="12.00")
    add_to_cart(customer, pen["id"], 2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        checkout(customer)
    add_to_cart(customer, pen["id"], 3)
    add_to_cart(customer, book["id"], 1)
    for callback in callbacks:
        callback()

    items = customer.client().get(CART_URL).json()["items"]
    assert sorted((item["product_id"], item["quantity"]) for item in items) == sorted(
        [(pen["id"], 3), (book["id"], 1)]
    )


def test_checkout_of_an_empty_cart_is_400(customer):
    assert_error(checkout(customer), 400, "cart_empty")
    assert_nothing_written()


def test_a_failed_checkout_leaves_the_cart_alone(catalog, customer, django_capture_on_commit_callbacks):
    pen = catalog.add(name="Pen", price="1.50")
    add_to_cart(customer, pen["id"], 2)
    pen["is_active"] = False  # retired since it was put in the cart

    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(customer)

    assert_error(response, 400, "unknown_product")
    assert customer.client().get(CART_URL).json()["items"] == [{"product_id": pen["id"], "quantity": 2}]
    assert_nothing_written()


def test_checkout_with_invalid_payment_details_is_400(catalog, customer):
    pen = catalog.add(name="Pen", price="1.50")
    add_to_cart(customer, pen["id"], 1)

    response = customer.client().post(CHECKOUT_URL, {"payment_token": ""}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"payment_token", "shipping_address"}
    assert_nothing_written()


def test_checkout_with_an_idempotency_key_replays_the_order(
    catalog, customer, django_capture_on_commit_callbacks
):
    pen = catalog.add(name="Pen", price="1.50")
    add_to_cart(customer, pen["id"], 1)

    with django_capture_on_commit_callbacks(execute=True):
        first = checkout(customer, **{"Idempotency-Key": "checkout-1"})
    second = checkout(customer, **{"Idempotency-Key": "checkout-1"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == first.json()
    assert Order.objects.count() == 1


# Admin


@pytest.fixture
def admin_client(client):
    operator = get_user_model().objects.create_superuser(
        username="operator", password="x", email="op@example.com"
    )
    client.force_login(operator)
    return client


def test_the_admin_lists_searches_and_shows_orders(admin_client):
    order = make_order(email="findme@example.com")
    make_order(email="other@example.com")

    listing = admin_client.get("/admin/orders/orders/order/", {"status__exact": "pending"})
    by_id = admin_client.get("/admin/orders/orders/order/", {"q": str(order.id)})
    by_email = admin_client.get("/admin/orders/orders/order/", {"q": "findme"})
    detail = admin_client.get(f"/admin/orders/orders/order/{order.id}/change/")

    assert listing.status_code == 200
    assert by_id.context["cl"].result_count == 1
    assert by_email.context["cl"].result_count == 1
    assert detail.status_code == 200
    assert b"tok_visa" not in detail.content
    assert admin_client.get("/admin/orders/orders/productreadmodel/").status_code == 200


def test_the_admin_cancel_action_cancels_through_the_service_as_a_staff_cancel(client):
    operator_id = admin_shadow_login(client)
    open_order = make_order(status="awaiting_payment")
    rejected = make_order(status="rejected")

    selection = {"action": "cancel_orders", "_selected_action": [str(open_order.id), str(rejected.id)]}
    asked = client.post("/admin/orders/orders/order/", selection)
    assert asked.status_code == 200 and b"Yes, cancel them" in asked.content  # a confirmation first
    open_order.refresh_from_db()
    assert open_order.status == "awaiting_payment"  # nothing happened yet

    response = client.post("/admin/orders/orders/order/", selection | {"post": "yes"}, follow=True)

    assert response.status_code == 200
    open_order.refresh_from_db()
    rejected.refresh_from_db()
    assert (open_order.status, open_order.status_reason) == ("cancelled", "staff_cancelled")
    assert rejected.status == "rejected"
    assert [event["order_id"] for event in outbox("order.cancelled")] == [str(open_order.id)]
    assert outbox("order.cancelled")[0]["reason"] == "staff_cancelled"
    last = open_order.history.order_by("at", "id").last()
    assert (last.reason, str(last.actor_id)) == ("staff_cancelled", operator_id)

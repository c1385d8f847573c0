"""inventory's REST surface: stock, staff adjustments and their audit trail, auth, admin, health."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from inventory import services
from inventory.models import Reservation, ReservationStatus, StockAdjustment
from inventory.tests.helpers import assert_error, bearer_client, counts, line, order_facts
from shared.testing import access_token

STOCK_URL = "/api/v1/stock/"

pytestmark = pytest.mark.django_db


def stock_url(product_id) -> str:
    return f"{STOCK_URL}{product_id}/"


def adjustments_url(product_id) -> str:
    return f"{STOCK_URL}{product_id}/adjustments/"


def adjust(client, product_id, body, **kwargs):
    return client.post(adjustments_url(product_id), body, format="json", **kwargs)


# GET /api/v1/stock/{product_id}/


def test_any_customer_reads_a_products_stock(customer_client, make_stock):
    stock = make_stock(10)
    services.reservation_create(
        order_id=uuid.uuid4(), lines=[line(stock.product_id, 3)], order_facts=order_facts()
    )

    response = customer_client.get(stock_url(stock.product_id))

    assert response.status_code == 200
    assert response.json() == {
        "product_id": str(stock.product_id),
        "on_hand": 7,
        "reserved": 3,
        "available": 7,
    }


def test_stock_of_an_unknown_product_is_404(customer_client):
    assert_error(customer_client.get(stock_url(uuid.uuid4())), 404, "not_found")


def test_a_product_id_that_is_not_a_uuid_is_404(customer_client):
    assert_error(customer_client.get(f"{STOCK_URL}not-a-uuid/"), 404, "not_found")


def test_stock_needs_a_token(make_stock):
    stock = make_stock(1)

    assert_error(APIClient().get(stock_url(stock.product_id)), 401, "not_authenticated")


def test_stock_refuses_a_garbage_token(make_stock):
    stock = make_stock(1)

    response = bearer_client("garbage").get(stock_url(stock.product_id))

    assert_error(response, 401, "token_not_valid")


def test_stock_refuses_an_expired_token(make_stock):
    stock = make_stock(1)
    expired = access_token(user_id=str(uuid.uuid4()), lifetime_seconds=-10)

    assert_error(bearer_client(expired).get(stock_url(stock.product_id)), 401, "token_not_valid")


# GET /api/v1/stock/ (staff)


def test_staff_list_every_stock_row_paginated(staff_client, make_stock):
    first, second = make_stock(1, sku="A"), make_stock(2, sku="B")

    response = staff_client.get(STOCK_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    by_id = {row["product_id"]: row for row in body["results"]}
    assert by_id[str(first.product_id)]["on_hand"] == 1
    assert by_id[str(second.product_id)]["sku"] == "B"
    assert set(body["results"][0]) == {
        "product_id",
        "on_hand",
        "reserved",
        "available",
        "sold",
        "sku",
        "product_deleted_at",
        "updated_at",
    }


def test_the_stock_list_pages(staff_client, make_stock):
    for _ in range(25):
        make_stock(1)

    first_page = staff_client.get(STOCK_URL).json()
    second_page = staff_client.get(first_page["next"]).json()

    assert (first_page["count"], len(first_page["results"]), len(second_page["results"])) == (25, 20, 5)


def test_customers_may_not_list_stock(customer_client):
    assert_error(customer_client.get(STOCK_URL), 403, "permission_denied")


def test_the_stock_list_needs_a_token():
    assert_error(APIClient().get(STOCK_URL), 401, "not_authenticated")


# POST /api/v1/stock/{product_id}/adjustments/ (staff)


def test_staff_adjust_stock_and_get_the_new_stock(staff_client, staff_id, make_stock):
    stock = make_stock(5)

    response = adjust(staff_client, stock.product_id, {"delta": 12, "reason": "delivery 118"})

    assert response.status_code == 201
    assert response.json() == {
        "product_id": str(stock.product_id),
        "on_hand": 17,
        "reserved": 0,
        "available": 17,
    }
    audit = StockAdjustment.objects.get()
    assert (audit.delta, audit.reason, audit.on_hand_after) == (12, "delivery 118", 17)
    assert (audit.actor_id, audit.actor_email) == (staff_id, "sam.staff@example.com")


def test_staff_remove_units(staff_client, make_stock):
    stock = make_stock(5)

    response = adjust(staff_client, stock.product_id, {"delta": -5, "reason": "stock take"})

    assert response.status_code == 201
    assert response.json()["on_hand"] == 0


def test_removing_more_than_on_hand_is_409_and_writes_nothing(staff_client, make_stock):
    stock = make_stock(5)
    services.reservation_create(
        order_id=uuid.uuid4(), lines=[line(stock.product_id, 2)], order_facts=order_facts()
    )

    response = adjust(staff_client, stock.product_id, {"delta": -4, "reason": "stock take"})

    error = assert_error(response, 409, "insufficient_stock")
    assert set(error["fields"]) == {"delta"}
    assert counts(stock) == (3, 2, 0)
    assert StockAdjustment.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "bad_fields"),
    [
        ({}, {"delta", "reason"}),
        ({"delta": 5}, {"reason"}),
        ({"reason": "delivery"}, {"delta"}),
        ({"delta": 0, "reason": "nothing"}, {"delta"}),
        ({"delta": 5, "reason": ""}, {"reason"}),
        ({"delta": 5, "reason": "   "}, {"reason"}),
        ({"delta": 5, "reason": None}, {"reason"}),
        ({"delta": "5", "reason": "a string"}, {"delta"}),
        ({"delta": 2.5, "reason": "a fraction"}, {"delta"}),
        ({"delta": 5.0, "reason": "a float"}, {"delta"}),
        ({"delta": True, "reason": "a boolean"}, {"delta"}),
        ({"delta": None, "reason": "null"}, {"delta"}),
        ({"delta": [5], "reason": "a list"}, {"delta"}),
        ({"delta": 10**12, "reason": "huge"}, {"delta"}),
        ({"delta": -(10**12), "reason": "huge"}, {"delta"}),
        ({"delta": 5, "reason": "x" * 256}, {"reason"}),
    ],
)
def test_invalid_adjustments_are_400_and_write_nothing(staff_client, make_stock, body, bad_fields):
    stock = make_stock(5)

    error = assert_error(adjust(staff_client, stock.product_id, body), 400, "validation_error")

    assert set(error["fields"]) == bad_fields
    assert counts(stock) == (5, 0, 0)
    assert StockAdjustment.objects.count() == 0


def test_a_body_that_is_not_an_object_is_400(staff_client, make_stock):
    stock = make_stock(5)

    response = adjust(staff_client, stock.product_id, [1, 2])

    assert response.status_code == 400
    assert StockAdjustment.objects.count() == 0


def test_malformed_json_is_400(staff_client, make_stock):
    stock = make_stock(5)

    response = staff_client.post(
        adjustments_url(stock.product_id), data='{"delta": 5,', content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")
    assert StockAdjustment.objects.count() == 0


def test_a_form_encoded_body_is_415(staff_client, make_stock):
    stock = make_stock(5)

    response = staff_client.post(adjustments_url(stock.product_id), {"delta": 5, "reason": "form"})

    assert_error(response, 415, "unsupported_media_type")


def test_adjusting_an_unknown_product_is_404(staff_client):
    response = adjust(staff_client, uuid.uuid4(), {"delta": 5, "reason": "delivery"})

    assert_error(response, 404, "not_found")
    assert StockAdjustment.objects.count() == 0


def test_customers_may_not_adjust_stock(customer_client, make_stock):
    stock = make_stock(5)

    response = adjust(customer_client, stock.product_id, {"delta": 5, "reason": "free stuff"})

    assert_error(response, 403, "permission_denied")
    assert counts(stock) == (5, 0, 0)


def test_adjusting_needs_a_token(make_stock):
    stock = make_stock(5)

    assert_error(adjust(APIClient(), stock.product_id, {"delta": 5, "reason": "x"}), 401, "not_authenticated")
    assert counts(stock) == (5, 0, 0)


# GET /api/v1/stock/{product_id}/adjustments/ (staff)


def test_staff_read_the_audit_trail_newest_first(staff_client, make_stock):
    stock, other = make_stock(5), make_stock(5)
    adjust(staff_client, stock.product_id, {"delta": 3, "reason": "delivery"})
    adjust(staff_client, stock.product_id, {"delta": -2, "reason": "breakage"})
    adjust(staff_client, other.product_id, {"delta": 1, "reason": "elsewhere"})

    response = staff_client.get(adjustments_url(stock.product_id))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(row["delta"], row["reason"], row["on_hand_after"]) for row in body["results"]] == [
        (-2, "breakage", 6),
        (3, "delivery", 8),
    ]
    assert set(body["results"][0]) == {
        "id",
        "product_id",
        "delta",
        "reason",
        "on_hand_after",
        "actor_id",
        "actor_email",
        "created_at",
    }
    assert body["results"][0]["product_id"] == str(stock.product_id)


def test_the_audit_trail_of_an_unknown_product_is_404(staff_client):
    assert_error(staff_client.get(adjustments_url(uuid.uuid4())), 404, "not_found")


def test_customers_may_not_read_the_audit_trail(customer_client, make_stock):
    stock = make_stock(5)

    assert_error(customer_client.get(adjustments_url(stock.product_id)), 403, "permission_denied")


def test_the_audit_trail_needs_a_token(make_stock):
    stock = make_stock(5)

    assert_error(APIClient().get(adjustments_url(stock.product_id)), 401, "not_authenticated")


# Health, unknown URLs, schema


def test_liveness_answers_without_a_token():
    assert APIClient().get("/health/live").status_code == 200


def test_an_unknown_url_answers_in_the_error_shape(staff_client):
    assert_error(staff_client.get("/api/v1/nothing-here/"), 404, "not_found")


def test_the_openapi_schema_lists_the_stock_paths(staff_client):
    response = staff_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/v1/stock/",
        "/api/v1/stock/{product_id}/",
        "/api/v1/stock/{product_id}/adjustments/",
    } <= set(paths)


# Admin


ADMIN_STOCK_URL = "/admin/inventory/inventory/stock/"


def test_the_admin_adjust_action_asks_for_delta_and_reason_first(admin_client, make_stock):
    stock = make_stock(5)

    response = admin_client.post(ADMIN_STOCK_URL, {"action": "adjust_stock", "_selected_action": [stock.pk]})

    assert response.status_code == 200
    assert b'name="delta"' in response.content
    assert b'name="reason"' in response.content
    assert counts(stock) == (5, 0, 0)


def test_the_admin_adjust_action_adjusts_every_selected_product_through_the_service(admin_client, make_stock):
    first, second = make_stock(5), make_stock(1)

    response = admin_client.post(
        ADMIN_STOCK_URL,
        {
            "action": "adjust_stock",
            "_selected_action": [first.pk, second.pk],
            "apply": "1",
            "delta": "-2",
            "reason": "stock take",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert counts(first) == (3, 0, 0)
    assert counts(second) == (1, 0, 0)  # only 1 on hand: refused, reported, the other one still adjusted
    audit = StockAdjustment.objects.get()
    assert (audit.stock_id, audit.delta, audit.reason) == (first.product_id, -2, "stock take")
    assert audit.actor_id == "local:admin"  # pytest-django's local superuser: nobody at identity
    messages = [str(message) for message in response.context["messages"]]
    assert any("now 3 on hand" in message for message in messages)
    assert any("units are on hand" in message for message in messages)


def test_the_admin_adjust_action_redisplays_an_invalid_form(admin_client, make_stock):
    stock = make_stock(5)

    response = admin_client.post(
        ADMIN_STOCK_URL,
        {"action": "adjust_stock", "_selected_action": [stock.pk], "apply": "1", "delta": "0", "reason": ""},
    )

    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"delta", "reason"}
    assert StockAdjustment.objects.count() == 0


def test_the_admin_shows_reservations_with_lines_filtered_by_status(admin_client, make_stock):
    stock = make_stock(5)
    held = services.reservation_create(
        order_id=uuid.uuid4(), lines=[line(stock.product_id, 2)], order_facts=order_facts()
    )
    services.reservation_cancel(order_id=uuid.uuid4())

    listing = admin_client.get("/admin/inventory/inventory/reservation/", {"status": ReservationStatus.HELD})
    detail = admin_client.get(f"/admin/inventory/inventory/reservation/{held.pk}/change/")

    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset) == [held]
    assert detail.status_code == 200
    assert str(stock.product_id).encode() in detail.content
    assert Reservation.objects.count() == 2


def test_the_admin_cannot_add_or_edit_stock_reservations_or_adjustments(admin_client, make_stock):
    make_stock(5)

    for model in ("stock", "reservation", "stockadjustment"):
        assert admin_client.get(f"/admin/inventory/inventory/{model}/add/").status_code == 403
    assert admin_client.get("/admin/inventory/inventory/stockadjustment/").status_code == 200

"""The REST surface: own payments only (staff: all), the contract's fields and errors; the admin."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from payments import services
from payments.models import Payment
from payments.tests.helpers import (
    OTHER_USER_ID,
    USER_ID,
    cancelled_event,
    captured_payment,
    create_payment,
    deliver,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/payments/"


def detail_url(payment) -> str:
    return f"{LIST_URL}{payment.id}/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def api_client_anonymous():
    return APIClient()


def test_anonymous_requests_are_401(api_client_anonymous):
    assert_error(api_client_anonymous.get(LIST_URL), 401, "not_authenticated")
    assert_error(api_client_anonymous.get(f"{LIST_URL}{uuid.uuid4()}/"), 401, "not_authenticated")


def test_a_garbage_token_is_401(api_client_anonymous):
    api_client_anonymous.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert api_client_anonymous.get(LIST_URL).status_code == 401


def test_a_customer_lists_only_their_own_payments_with_the_contract_fields(customer_client):
    mine = captured_payment(total="12.50")
    create_payment(user_id=OTHER_USER_ID)

    response = customer_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (1, None, None)
    assert body["results"] == [
        {
            "id": str(mine.id),
            "order_id": str(mine.order_id),
            "amount": "12.50",
            "currency": "USD",
            "status": "captured",
            "created_at": body["results"][0]["created_at"],
        }
    ]
    assert "tok_visa" not in response.content.decode()


def test_staff_list_everyone_and_filter_by_order(staff_client):
    mine = create_payment()
    theirs = create_payment(user_id=OTHER_USER_ID)

    everything = staff_client.get(LIST_URL).json()
    one_order = staff_client.get(LIST_URL, {"order_id": str(theirs.order_id)}).json()

    assert {row["id"] for row in everything["results"]} == {str(mine.id), str(theirs.id)}
    assert [row["id"] for row in one_order["results"]] == [str(theirs.id)]


def test_a_customer_filtering_by_someone_elses_order_gets_nothing(customer_client):
    theirs = create_payment(user_id=OTHER_USER_ID)

    body = customer_client.get(LIST_URL, {"order_id": str(theirs.order_id)}).json()

    assert body["count"] == 0


def test_a_malformed_order_id_filter_is_400(customer_client):
    error = assert_error(customer_client.get(LIST_URL, {"order_id": "nope"}), 400, "validation_error")

    assert set(error["fields"]) == {"order_id"}


def test_a_tombstone_is_listed_as_a_voided_payment_of_nothing(customer_client, committed):
    order_id = uuid.uuid4()
    deliver(cancelled_event(order_id, user_id=USER_ID, previous_status="pending"), committed)

    results = customer_client.get(LIST_URL, {"order_id": str(order_id)}).json()["results"]

    assert [(row["status"], row["amount"]) for row in results] == [("voided", "0.00")]


def test_the_detail_of_ones_own_payment(customer_client):
    payment = services.payment_charge(payment_id=create_payment(token="tok_chargeDeclined").id)

    response = customer_client.get(detail_url(payment))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "order_id",
        "amount",
        "currency",
        "status",
        "created_at",
        "failure_reason",
        "updated_at",
    }
    assert (body["status"], body["failure_reason"]) == ("failed", "payment_declined")


def test_another_customers_payment_is_404(other_client, staff_client):
    payment = create_payment()

    assert_error(other_client.get(detail_url(payment)), 404, "not_found")
    assert staff_client.get(detail_url(payment)).status_code == 200


def test_unknown_and_malformed_ids_are_404(customer_client):
    assert_error(customer_client.get(f"{LIST_URL}{uuid.uuid4()}/"), 404, "not_found")
    assert_error(customer_client.get(f"{LIST_URL}not-a-uuid/"), 404, "not_found")


def test_payments_are_read_only_over_rest(customer_client):
    payment = create_payment()

    assert_error(customer_client.post(LIST_URL, {}, format="json"), 405, "method_not_allowed")
    assert_error(customer_client.delete(detail_url(payment)), 405, "method_not_allowed")


def test_pagination(staff_client):
    for _ in range(21):
        create_payment()

    first = staff_client.get(LIST_URL).json()
    second = staff_client.get(first["next"]).json()

    assert (first["count"], len(first["results"]), len(second["results"])) == (21, 20, 1)


# Admin


@pytest.fixture
def admin_browser(client):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "an-ops-pass-123")
    client.force_login(admin)
    return client


def test_the_admin_lists_filters_and_searches_payments(admin_browser):
    captured = captured_payment()
    pending = create_payment()

    by_status = admin_browser.get("/admin/payments/payments/payment/", {"status__exact": "pending"})
    by_order = admin_browser.get("/admin/payments/payments/payment/", {"q": str(captured.order_id)})
    detail = admin_browser.get(f"/admin/payments/payments/payment/{captured.id}/change/")

    assert by_status.status_code == 200
    assert str(pending.order_id) in by_status.content.decode()
    assert str(captured.order_id) not in by_status.content.decode()
    assert str(captured.order_id) in by_order.content.decode()
    assert str(pending.order_id) not in by_order.content.decode()
    assert detail.status_code == 200
    assert "tok_visa" not in detail.content.decode()


def test_the_refund_action_needs_the_change_permission(client):
    viewer = get_user_model().objects.create_user("viewer", "viewer@example.com", "a-viewer-pass-123")
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(viewer)
    captured = captured_payment()

    page = client.get("/admin/payments/payments/payment/")
    client.post(
        "/admin/payments/payments/payment/", {"action": "refund", "_selected_action": [str(captured.id)]}
    )

    assert page.status_code == 200
    assert "Refund selected captured payments" not in page.content.decode()
    captured.refresh_from_db()
    assert captured.status == Payment.Status.CAPTURED

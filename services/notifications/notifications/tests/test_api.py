"""notifications' REST surface (own notifications; staff all) and the operator's admin."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.core import mail
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Notification
from notifications.tests.helpers import NOTIFICATIONS_URL, assert_error, bearer_client, make_event

pytestmark = pytest.mark.django_db

LIST_FIELDS = {"id", "kind", "subject", "status", "created_at"}
ADMIN_URL = "/admin/notifications/notifications/notification/"


def record(event_type: str, kind: str, *, user_id: str, **data) -> Notification:
    return services.notification_record(event=make_event(event_type, user_id=user_id, **data), kind=kind)


def detail_url(notification_id) -> str:
    return f"{NOTIFICATIONS_URL}{notification_id}/"


@pytest.fixture
def ada_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def bob_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def notifications(queued_sends, ada_id, bob_id):
    """Two for Ada (welcome, then order confirmed) and one for Bob."""
    return {
        "ada_welcome": record("user.registered", "welcome", user_id=ada_id),
        "ada_confirmed": record("order.confirmed", "order_confirmed", user_id=ada_id),
        "bob_rejected": record(
            "order.rejected", "order_rejected", user_id=bob_id, customer_email="bob@example.com"
        ),
    }


def test_the_list_without_a_token_is_401():
    assert_error(APIClient().get(NOTIFICATIONS_URL), 401, "not_authenticated")


def test_a_garbage_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert client.get(NOTIFICATIONS_URL).status_code == 401


def test_a_customer_lists_only_their_own_newest_first(notifications, ada_id):
    response = bearer_client(user_id=ada_id).get(NOTIFICATIONS_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [
        str(notifications["ada_confirmed"].id),
        str(notifications["ada_welcome"].id),
    ]
    first = body["results"][0]
    assert set(first) == LIST_FIELDS
    assert first["kind"] == "order_confirmed"
    assert first["subject"] == notifications["ada_confirmed"].subject
    assert first["status"] == "pending"
    datetime.fromisoformat(first["created_at"])


def test_a_customer_with_none_gets_an_empty_page(notifications):
    body = bearer_client(user_id=str(uuid.uuid4())).get(NOTIFICATIONS_URL).json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_staff_list_everyones(notifications):
    body = bearer_client(user_id=str(uuid.uuid4()), is_staff=True).get(NOTIFICATIONS_URL).json()

    assert body["count"] == 3
    assert {item["kind"] for item in body["results"]} == {"welcome", "order_confirmed", "order_rejected"}


def test_the_list_is_paginated(queued_sends, ada_id):
    for _ in range(23):
        record("order.confirmed", "order_confirmed", user_id=ada_id)

    client = bearer_client(user_id=ada_id)
    first = client.get(NOTIFICATIONS_URL).json()
    second = client.get(NOTIFICATIONS_URL, {"page": 2}).json()

    assert first["count"] == 23
    assert len(first["results"]) == 20
    assert first["next"].endswith("?page=2")
    assert len(second["results"]) == 3
    assert second["next"] is None
    assert not {item["id"] for item in first["results"]} & {item["id"] for item in second["results"]}


def test_a_page_past_the_end_is_404(notifications, ada_id):
    assert_error(bearer_client(user_id=ada_id).get(NOTIFICATIONS_URL, {"page": 9}), 404, "not_found")


def test_a_customer_reads_their_own_notification(notifications, ada_id):
    notification = notifications["ada_confirmed"]

    response = bearer_client(user_id=ada_id).get(detail_url(notification.id))

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= LIST_FIELDS
    assert body["id"] == str(notification.id)
    assert body["body"] == notification.body
    assert body["recipient"] == "ada@example.com"
    assert body["event_type"] == "order.confirmed"


def test_another_users_notification_is_404(notifications, ada_id):
    response = bearer_client(user_id=ada_id).get(detail_url(notifications["bob_rejected"].id))

    assert_error(response, 404, "not_found")


def test_staff_read_anyones_notification(notifications):
    staff = bearer_client(user_id=str(uuid.uuid4()), is_staff=True)

    response = staff.get(detail_url(notifications["bob_rejected"].id))

    assert response.status_code == 200
    assert response.json()["kind"] == "order_rejected"


def test_an_unknown_or_malformed_id_is_404(notifications, ada_id):
    client = bearer_client(user_id=ada_id)

    assert_error(client.get(detail_url(uuid.uuid4())), 404, "not_found")
    assert_error(client.get(detail_url("not-a-uuid")), 404, "not_found")


def test_the_detail_without_a_token_is_401(notifications):
    assert_error(APIClient().get(detail_url(notifications["ada_welcome"].id)), 401, "not_authenticated")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_notifications_cannot_be_written_through_the_api(notifications, ada_id, method):
    client = bearer_client(user_id=ada_id)

    assert_error(getattr(client, method)(NOTIFICATIONS_URL, {}, format="json"), 405, "method_not_allowed")
    url = detail_url(notifications["ada_welcome"].id)
    assert_error(getattr(client, method)(url, {}, format="json"), 405, "method_not_allowed")
    assert Notification.objects.count() == 3


# Admin


def test_the_admin_lists_filters_and_searches(admin_client, notifications):
    bob = notifications["bob_rejected"]

    assert admin_client.get(ADMIN_URL).status_code == 200
    filtered = admin_client.get(ADMIN_URL, {"kind": "order_rejected", "status": "pending"})
    assert filtered.status_code == 200
    assert list(filtered.context["cl"].queryset) == [bob]
    by_recipient = admin_client.get(ADMIN_URL, {"q": "bob@example"})
    assert list(by_recipient.context["cl"].queryset) == [bob]
    by_event = admin_client.get(ADMIN_URL, {"q": str(bob.event_id)})
    assert list(by_event.context["cl"].queryset) == [bob]
    assert admin_client.get(f"{ADMIN_URL}{bob.id}/change/").status_code == 200


def test_the_admin_resend_action_sends_copies_and_says_how_many(admin_client, notifications):
    selected = [notifications["ada_confirmed"], notifications["bob_rejected"]]

    response = admin_client.post(
        ADMIN_URL,
        {"action": "resend", "_selected_action": [str(n.id) for n in selected]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == ["2 of 2 notifications resent."]
    assert sorted(message.to[0] for message in mail.outbox) == ["ada@example.com", "bob@example.com"]
    copies = Notification.objects.filter(resend_of__isnull=False)
    assert {copy.resend_of_id for copy in copies} == {n.id for n in selected}
    assert all(copy.status == Notification.Status.SENT for copy in copies)


def test_the_admin_resend_action_reports_copies_it_could_not_send(admin_client, settings, notifications):
    settings.EMAIL_BACKEND = "notifications.tests.helpers.FailingEmailBackend"

    response = admin_client.post(
        ADMIN_URL,
        {"action": "resend", "_selected_action": [str(notifications["ada_welcome"].id)]},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "0 of 1 notifications resent. "
        "1 not sent now: see the copies' last error (pending copies are retried)."
    ]
    assert Notification.objects.get(resend_of=notifications["ada_welcome"]).status == "pending"


def test_the_admin_can_send_pending_notifications_now(admin_client, notifications):
    response = admin_client.post(
        ADMIN_URL,
        {"action": "send_pending_now", "_selected_action": [str(n.id) for n in notifications.values()]},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "3 of 3 pending notifications sent."
    ]
    assert len(mail.outbox) == 3
    assert not Notification.objects.filter(status="pending").exists()


def test_a_customer_cannot_open_the_admin(client, django_user_model, notifications):
    user = django_user_model.objects.create_user(username="carla", password="pw-carla-1")
    client.force_login(user)

    response = client.get(ADMIN_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/notifications/login/")

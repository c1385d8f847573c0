"""notifications' admin: the log is view-only (no Save, no delete), links the customer and the order
into identity's and orders' admins, and its send actions need more than the right to look."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail

from notifications import services
from notifications.models import Notification
from notifications.tests.helpers import make_event
from shared.admin_ui.testing import admin_shadow_login

pytestmark = pytest.mark.django_db

ADMIN_URL = "/admin/notifications/notifications/notification/"


@pytest.fixture
def operator_id(client) -> str:
    return admin_shadow_login(client)


@pytest.fixture
def cancelled(queued_sends) -> Notification:
    event = make_event("order.cancelled", user_id=str(uuid.uuid4()), reason="staff_cancelled")
    return services.notification_record(event=event, kind="order_cancelled")


def test_a_notification_page_is_a_view_linking_the_customer_and_the_order(client, operator_id, cancelled):
    page = client.get(f"{ADMIN_URL}{cancelled.id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert f'href="/admin/identity/identity/user/{cancelled.user_id}/change/"' in html
    assert f'href="/admin/orders/orders/order/{cancelled.order_id}/change/"' in html
    assert (
        f'href="/admin/orders/orders/order/{cancelled.order_id}/change/"'
        in client.get(ADMIN_URL).content.decode()
    )


def test_notifications_cannot_be_changed_or_deleted(client, operator_id, cancelled):
    subject = cancelled.subject

    assert client.post(f"{ADMIN_URL}{cancelled.id}/change/", {"subject": "edited"}).status_code == 403
    assert client.post(f"{ADMIN_URL}{cancelled.id}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{ADMIN_URL}add/").status_code == 403
    client.post(
        ADMIN_URL, {"action": "delete_selected", "_selected_action": [str(cancelled.id)], "post": "yes"}
    )
    assert Notification.objects.get(pk=cancelled.pk).subject == subject


def test_the_list_can_be_searched_by_order_id(client, operator_id, cancelled, queued_sends):
    services.notification_record(event=make_event("order.confirmed"), kind="order_confirmed")

    found = client.get(ADMIN_URL, {"q": str(cancelled.order_id)})

    assert list(found.context["cl"].queryset) == [cancelled]


def test_sending_needs_the_change_permission(client, cancelled):
    viewer = get_user_model().objects.create_user(str(uuid.uuid4()), "viewer@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(viewer)

    page = client.get(ADMIN_URL)
    client.post(ADMIN_URL, {"action": "resend", "_selected_action": [str(cancelled.id)]})

    assert page.status_code == 200
    assert page.context["action_form"] is None
    assert Notification.objects.count() == 1
    assert mail.outbox == []

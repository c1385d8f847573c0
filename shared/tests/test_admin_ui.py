"""shared.admin_ui and the messaging admin, in the test service's own admin (`/admin/shared_tests/`):
the bar to every service's admin, links across services, who acted, masked card tokens, and an
outbox and inbox that can be looked at and republished but never edited or deleted."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from shared.admin_ui import redaction
from shared.admin_ui.actors import identity_user_id
from shared.admin_ui.links import admin_link
from shared.admin_ui.nav import platform_services
from shared.admin_ui.testing import admin_shadow_login
from shared.messaging.events import publish_event
from shared.messaging.models import InboxMessage, OutboxEvent

pytestmark = pytest.mark.django_db

ADMIN = "/admin/shared_tests/"
OUTBOX_ADMIN = f"{ADMIN}messaging/outboxevent/"
INBOX_ADMIN = f"{ADMIN}messaging/inboxmessage/"


def publish(event_type: str, data: dict) -> OutboxEvent:
    with transaction.atomic():
        event = publish_event(event_type, data)
    return OutboxEvent.objects.get(id=event.id)


def action_names(response) -> set[str]:
    form = response.context["action_form"]
    return {name for name, _label in form.fields["action"].choices if name} if form else set()


# The pieces


def test_redact_hides_every_secret_field_at_any_depth_and_leaves_the_rest():
    envelope = {"id": "e", "data": {"payment_token": "tok_visa", "lines": [{"payment_token": "x", "n": 1}]}}

    assert redaction.redact(envelope) == {
        "id": "e",
        "data": {"payment_token": "(hidden)", "lines": [{"payment_token": "(hidden)", "n": 1}]},
    }
    assert envelope["data"]["payment_token"] == "tok_visa"  # a copy: the row itself is untouched


def test_admin_link_points_at_the_owning_services_admin_through_the_gateway_path():
    order_id = uuid.uuid4()

    assert admin_link(order_id, service="orders", model="orders.order") == (
        f'<a href="/admin/orders/orders/order/{order_id}/change/">{order_id}</a>'
    )
    assert admin_link(None, service="orders", model="orders.order") is None
    assert 'href="/admin/catalog/catalog/product/p_2F1/change/"' in admin_link(
        "p/1", service="catalog", model="catalog.product"
    )  # Django's admin quoting of primary keys


def test_the_services_are_the_ones_the_deployment_lists(settings):
    """PLATFORM_SERVICES, which every deployment sets from the topology (here manage_all.py's six)."""
    assert platform_services() == (
        "identity",
        "catalog",
        "inventory",
        "orders",
        "payments",
        "notifications",
    )  # never the payment provider: a sandbox, with no admin

    settings.PLATFORM_SERVICES = ["identity", "orders"]
    assert platform_services() == ("identity", "orders")


def test_the_actor_is_identitys_user_id_never_the_local_id(client):
    User = get_user_model()
    staff_id = admin_shadow_login(client)
    shadow = User.objects.get(username=staff_id)
    local = User.objects.create_superuser("admin", "admin@example.com", "a-local-pass-1")

    assert identity_user_id(shadow) == uuid.UUID(staff_id)
    assert identity_user_id(local) is None


# The bar to the other admins


def test_every_admin_page_has_a_bar_linking_every_services_admin(client):
    admin_shadow_login(client)

    for page in (ADMIN, OUTBOX_ADMIN, f"{ADMIN}messaging/dead-letters/"):
        html = client.get(page).content.decode()
        nav = html[html.index('<nav id="service-nav"') :]
        nav = nav[: nav.index("</nav>")]
        for service in platform_services():
            assert f'<a href="/admin/{service}/">{service}</a>' in nav, (page, service)
    assert "admin_ui/service_nav.css" in html


# The outbox and the inbox


def test_the_outbox_page_is_a_view_with_the_card_token_hidden(client):
    admin_shadow_login(client)
    event = publish("ledger.credited", {"account": "a", "amount": 1, "payment_token": "tok_visa_4242"})

    page = client.get(f"{OUTBOX_ADMIN}{event.id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert "tok_visa_4242" not in html
    assert "&quot;payment_token&quot;: &quot;(hidden)&quot;" in html
    assert "&quot;account&quot;: &quot;a&quot;" in html
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert "closelink" in html


def test_outbox_rows_cannot_be_added_changed_or_deleted_only_republished(client):
    admin_shadow_login(client)
    event = publish("ledger.credited", {"account": "a", "amount": 1})

    listing = client.get(OUTBOX_ADMIN)
    bulk_delete = client.post(
        OUTBOX_ADMIN, {"action": "delete_selected", "_selected_action": [str(event.id)], "post": "yes"}
    )

    assert action_names(listing) == {"republish"}
    assert "Delete selected" not in listing.content.decode()
    assert client.get(f"{OUTBOX_ADMIN}add/").status_code == 403
    assert client.post(f"{OUTBOX_ADMIN}{event.id}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{OUTBOX_ADMIN}{event.id}/change/", {"event_type": "x"}).status_code == 403
    assert bulk_delete.status_code == 302  # Django: "No action selected", nothing done
    assert OutboxEvent.objects.filter(id=event.id, event_type="ledger.credited").exists()


def test_the_outbox_and_inbox_list_the_newest_first(client):
    admin_shadow_login(client)
    older = publish("ledger.credited", {"account": "a", "amount": 1})
    newer = publish("ledger.credited", {"account": "a", "amount": 2})
    first, second = (
        InboxMessage.objects.create(consumer="c", event_id=uuid.uuid4(), event_type="ledger.credited")
        for _ in range(2)
    )

    assert list(client.get(OUTBOX_ADMIN).context["cl"].result_list) == [newer, older]
    assert list(client.get(INBOX_ADMIN).context["cl"].result_list) == [second, first]


def test_inbox_rows_cannot_be_added_changed_or_deleted(client):
    admin_shadow_login(client)
    message = InboxMessage.objects.create(consumer="c", event_id=uuid.uuid4(), event_type="ledger.credited")

    listing = client.get(INBOX_ADMIN)
    detail = client.get(f"{INBOX_ADMIN}{message.pk}/change/").content.decode()

    assert action_names(listing) == set()
    assert 'name="_save"' not in detail
    assert client.get(f"{INBOX_ADMIN}add/").status_code == 403
    assert client.post(f"{INBOX_ADMIN}{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{INBOX_ADMIN}{message.pk}/change/", {"consumer": "x"}).status_code == 403
    assert InboxMessage.objects.filter(pk=message.pk, consumer="c").exists()


def test_republishing_needs_the_change_permission(client):
    viewer = get_user_model().objects.create_user(
        "viewer", "viewer@example.com", "a-viewer-pass-1", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(viewer)
    publish("ledger.credited", {"account": "a", "amount": 1})

    listing = client.get(OUTBOX_ADMIN)

    assert listing.status_code == 200
    assert action_names(listing) == set()

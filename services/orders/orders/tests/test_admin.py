"""orders' admin as an operator uses it: view-only pages, other services' ids as links into their admins,
the bar to the other admins, and the outbox without its card tokens or any way to delete a row."""

from __future__ import annotations

import uuid

import pytest

from orders import services
from orders.models import ProductReadModel
from orders.services import LineRequest
from orders.tests.helpers import ADDRESS, make_order
from shared.admin_ui.nav import platform_services
from shared.admin_ui.testing import admin_shadow_login
from shared.messaging.models import InboxMessage, OutboxEvent

pytestmark = pytest.mark.django_db

ORDERS_ADMIN = "/admin/orders/orders/order/"
OUTBOX_ADMIN = "/admin/orders/messaging/outboxevent/"
INBOX_ADMIN = "/admin/orders/messaging/inboxmessage/"


@pytest.fixture
def operator_id(client) -> str:
    return admin_shadow_login(client)


def action_names(response) -> set[str]:
    """The actions a change list offers (Django renders no action form when there is none)."""
    form = response.context["action_form"]
    return {name for name, _label in form.fields["action"].choices if name} if form else set()


def test_an_order_page_is_a_view_without_save_or_delete_buttons(client, operator_id):
    order = make_order(status="confirmed")

    page = client.get(f"{ORDERS_ADMIN}{order.id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert "deletelink" not in html
    assert "closelink" in html  # Django's view-only page
    assert client.post(f"{ORDERS_ADMIN}{order.id}/change/", {"status": "cancelled"}).status_code == 403
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_the_order_list_offers_the_cancel_action_only(client, operator_id):
    make_order()

    assert action_names(client.get(ORDERS_ADMIN)) == {"cancel_orders"}


def test_an_order_links_its_customer_products_and_who_cancelled_it_into_their_admins(client, operator_id):
    order = make_order(status="awaiting_payment")
    services.order_cancel(order_id=order.id, actor_id=uuid.UUID(operator_id), by_staff=True)
    product_ids = [str(item.product_id) for item in order.items.all()]

    html = client.get(f"{ORDERS_ADMIN}{order.id}/change/").content.decode()

    assert f'href="/admin/identity/identity/user/{order.user_id}/change/"' in html
    for product_id in product_ids:
        assert f'href="/admin/catalog/catalog/product/{product_id}/change/"' in html
    assert f'href="/admin/identity/identity/user/{operator_id}/change/"' in html
    assert "staff_cancelled" in html or "Staff Cancelled" in html


def test_the_product_read_model_links_to_the_catalog_product(client, operator_id):
    product = ProductReadModel.objects.create(
        product_id=uuid.uuid4(), sku="LAMP-1", name="Lamp", price="30.00", updated_at="2026-01-01T00:00:00Z"
    )

    listing = client.get("/admin/orders/orders/productreadmodel/").content.decode()
    detail = client.get(
        f"/admin/orders/orders/productreadmodel/{product.product_id}/change/"
    ).content.decode()

    link = f'href="/admin/catalog/catalog/product/{product.product_id}/change/"'
    assert link in listing
    assert link in detail
    assert 'name="_save"' not in detail


def test_every_admin_page_has_the_bar_to_the_other_services_admins(client, operator_id):
    html = client.get("/admin/orders/").content.decode()

    nav = html[html.index('<nav id="service-nav"') : html.index("</nav>", html.index('id="service-nav"'))]
    others = [service for service in platform_services() if service != "orders"]
    assert len(others) == 5
    for service in others:
        assert f'<a href="/admin/{service}/">{service}</a>' in nav
    assert 'href="/admin/orders/"' not in nav  # this admin is marked, not linked
    assert 'aria-current="page">orders<' in nav


def test_the_bar_is_not_shown_to_visitors_who_are_not_logged_in(client):
    response = client.get("/admin/orders/login/?local=1")

    assert response.status_code == 200
    assert 'id="service-nav"' not in response.content.decode()


# The outbox and the inbox


@pytest.fixture
def outbox_event(catalog) -> OutboxEvent:
    """order.created, as placing an order writes it: it carries the customer's card token."""
    pen = catalog.add(name="Pen", price="1.50")
    order = services.order_create(
        user_id=uuid.uuid4(),
        customer_email="carla@example.com",
        lines=[LineRequest(product_id=uuid.UUID(pen["id"]), quantity=1)],
        payment_token="tok_visa_4242",
        shipping_address=dict(ADDRESS),
    )
    return OutboxEvent.objects.get(event_type="order.created", envelope__data__order_id=str(order.id))


def test_the_outbox_page_hides_the_card_token_of_the_envelope(client, operator_id, outbox_event):
    assert outbox_event.envelope["data"]["payment_token"] == "tok_visa_4242"

    page = client.get(f"{OUTBOX_ADMIN}{outbox_event.id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert "tok_visa_4242" not in html
    assert "&quot;payment_token&quot;: &quot;(hidden)&quot;" in html
    assert str(outbox_event.envelope["data"]["order_id"]) in html
    assert 'name="_save"' not in html
    assert "deletelink" not in html


def test_outbox_rows_cannot_be_added_changed_or_deleted(client, operator_id, outbox_event):
    listing = client.get(OUTBOX_ADMIN)

    assert action_names(listing) == {"republish"}
    assert client.get(f"{OUTBOX_ADMIN}add/").status_code == 403
    assert client.post(f"{OUTBOX_ADMIN}{outbox_event.id}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{OUTBOX_ADMIN}{outbox_event.id}/change/", {"event_type": "x"}).status_code == 403
    client.post(
        OUTBOX_ADMIN, {"action": "delete_selected", "_selected_action": [str(outbox_event.id)], "post": "yes"}
    )
    assert OutboxEvent.objects.filter(id=outbox_event.id, event_type="order.created").exists()


def test_the_outbox_and_inbox_lists_show_the_newest_first(client, operator_id):
    first, second = make_order(), make_order()
    services.order_cancel(order_id=first.id)
    services.order_cancel(order_id=second.id)
    older, newer = (
        InboxMessage.objects.create(consumer="orders", event_id=uuid.uuid4(), event_type="payment.succeeded")
        for _ in range(2)
    )

    outbox_rows = list(client.get(OUTBOX_ADMIN).context["cl"].result_list)
    inbox_rows = list(client.get(INBOX_ADMIN).context["cl"].result_list)

    assert [row.envelope["data"]["order_id"] for row in outbox_rows] == [str(second.id), str(first.id)]
    assert inbox_rows == [newer, older]


def test_inbox_rows_cannot_be_added_changed_or_deleted(client, operator_id):
    message = InboxMessage.objects.create(
        consumer="orders", event_id=uuid.uuid4(), event_type="payment.succeeded"
    )

    listing = client.get(INBOX_ADMIN)
    detail = client.get(f"{INBOX_ADMIN}{message.pk}/change/").content.decode()

    assert action_names(listing) == set()
    assert 'name="_save"' not in detail
    assert client.get(f"{INBOX_ADMIN}add/").status_code == 403
    assert client.post(f"{INBOX_ADMIN}{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert InboxMessage.objects.filter(pk=message.pk).exists()

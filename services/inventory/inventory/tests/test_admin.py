"""inventory's admin as an operator signed in through identity uses it: adjustments audited with
identity's user id, view-only pages, and other services' ids as links into their admins."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from inventory import services
from inventory.models import StockAdjustment
from inventory.tests.helpers import counts, line, order_facts
from shared.admin_ui.testing import admin_shadow_login

pytestmark = pytest.mark.django_db

STOCK_ADMIN = "/admin/inventory/inventory/stock/"
ADJUSTMENTS_ADMIN = "/admin/inventory/inventory/stockadjustment/"
RESERVATIONS_ADMIN = "/admin/inventory/inventory/reservation/"


@pytest.fixture
def operator_id(client) -> str:
    return admin_shadow_login(client, email="olga.ops@example.com")


def adjust(client, *stocks, delta: int, reason: str):
    return client.post(
        STOCK_ADMIN,
        {
            "action": "adjust_stock",
            "_selected_action": [str(stock.pk) for stock in stocks],
            "apply": "1",
            "delta": str(delta),
            "reason": reason,
        },
        follow=True,
    )


def test_an_adjustment_in_the_admin_records_identitys_user_id_as_the_actor(client, operator_id, make_stock):
    stock = make_stock(5)

    adjust(client, stock, delta=7, reason="delivery 2024-118")

    assert counts(stock) == (12, 0, 0)
    audit = StockAdjustment.objects.get()
    assert (audit.actor_id, audit.actor_email) == (operator_id, "olga.ops@example.com")
    local_id = get_user_model().objects.get(username=operator_id).pk
    assert audit.actor_id != f"admin:{local_id}"


def test_the_audit_rows_link_the_actor_to_identitys_admin(client, operator_id, make_stock):
    stock = make_stock(5)
    adjust(client, stock, delta=-2, reason="breakage")
    audit = StockAdjustment.objects.get()
    link = f'href="/admin/identity/identity/user/{operator_id}/change/"'

    assert link in client.get(ADJUSTMENTS_ADMIN).content.decode()
    assert link in client.get(f"{ADJUSTMENTS_ADMIN}{audit.pk}/change/").content.decode()
    assert link in client.get(f"{STOCK_ADMIN}{stock.pk}/change/").content.decode()  # the inline trail


def test_an_api_adjustment_shows_the_tokens_user_id_in_the_admin(
    client, operator_id, staff_client, staff_id, make_stock
):
    stock = make_stock(5)
    staff_client.post(
        f"/api/v1/stock/{stock.product_id}/adjustments/", {"delta": 3, "reason": "recount"}, format="json"
    )

    assert StockAdjustment.objects.get().actor_id == staff_id
    page = client.get(ADJUSTMENTS_ADMIN).content.decode()
    assert f'href="/admin/identity/identity/user/{staff_id}/change/"' in page


def test_the_stock_page_is_a_view_linking_the_catalog_product(client, operator_id, make_stock):
    stock = make_stock(5, sku="LAMP-1")
    product_link = f'href="/admin/catalog/catalog/product/{stock.product_id}/change/"'

    listing = client.get(STOCK_ADMIN).content.decode()
    page = client.get(f"{STOCK_ADMIN}{stock.pk}/change/")
    html = page.content.decode()

    assert product_link in listing
    assert page.status_code == 200
    assert product_link in html
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert client.post(f"{STOCK_ADMIN}{stock.pk}/change/", {"on_hand": "99"}).status_code == 403
    assert counts(stock) == (5, 0, 0)


def test_a_reservation_links_its_order_and_products(client, operator_id, make_stock):
    stock = make_stock(5)
    order_id = uuid.uuid4()
    reservation = services.reservation_create(
        order_id=order_id, lines=[line(stock.product_id, 2)], order_facts=order_facts()
    )

    listing = client.get(RESERVATIONS_ADMIN).content.decode()
    html = client.get(f"{RESERVATIONS_ADMIN}{reservation.pk}/change/").content.decode()

    assert f'href="/admin/orders/orders/order/{order_id}/change/"' in listing
    assert f'href="/admin/orders/orders/order/{order_id}/change/"' in html
    assert f'href="/admin/catalog/catalog/product/{stock.product_id}/change/"' in html
    assert 'name="_save"' not in html


def test_adjusting_needs_the_change_permission(client, make_stock):
    viewer = get_user_model().objects.create_user(str(uuid.uuid4()), "viewer@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stock"))
    client.force_login(viewer)
    stock = make_stock(5)

    page = client.get(STOCK_ADMIN)
    adjust(client, stock, delta=3, reason="sneaky")

    assert page.status_code == 200
    assert "Adjust stock of the selected products" not in page.content.decode()
    assert counts(stock) == (5, 0, 0)
    assert StockAdjustment.objects.count() == 0

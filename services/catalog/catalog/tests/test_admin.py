"""The admin writes through the service functions: the same events as the API, no hard deletes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from catalog.models import Category, Product
from catalog.tests.helpers import outbox

pytestmark = pytest.mark.django_db

PRODUCTS_ADMIN = "/admin/catalog/catalog/product/"


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("operator", "operator@example.com", "unused-pass-1"))
    return client


def test_adding_a_product_publishes_product_created_with_its_opening_stock(admin_client, kitchen):
    response = admin_client.post(
        f"{PRODUCTS_ADMIN}add/",
        {
            "sku": "teapot-9",
            "name": "Teapot",
            "description": "",
            "category": kitchen.pk,
            "price": "24.00",
            "initial_stock": "15",
        },
    )

    assert response.status_code == 302, response.content
    product = Product.objects.get()
    assert product.sku == "TEAPOT-9"
    [envelope] = outbox()
    assert envelope["type"] == "product.created"
    assert envelope["data"]["product_id"] == str(product.id)
    assert envelope["data"]["initial_stock"] == 15


def test_the_add_form_refuses_a_taken_sku_in_any_case(admin_client, make_product, kitchen):
    make_product(sku="TEAPOT-9")

    response = admin_client.post(
        f"{PRODUCTS_ADMIN}add/",
        {"sku": "teapot-9", "name": "Teapot", "category": kitchen.pk, "price": "24.00", "initial_stock": "0"},
    )

    assert response.status_code == 200
    assert "A product with this SKU already exists." in response.content.decode()
    assert Product.objects.count() == 1


def test_editing_the_price_in_the_list_publishes_product_updated(admin_client, make_product):
    product = make_product(price="10.00")

    response = admin_client.post(
        PRODUCTS_ADMIN,
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(product.id),
            "form-0-price": "11.25",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content
    product.refresh_from_db()
    assert product.price == Decimal("11.25")
    [envelope] = outbox("product.updated")
    assert envelope["data"]["price"] == "11.25"


def test_the_deactivate_action_soft_deletes_and_publishes_product_deleted(admin_client, make_product):
    product = make_product()

    admin_client.post(PRODUCTS_ADMIN, {"action": "deactivate", "_selected_action": [str(product.id)]})

    product.refresh_from_db()
    assert product.is_active is False
    assert len(outbox("product.deleted")) == 1


def test_products_cannot_be_hard_deleted(admin_client, make_product):
    product = make_product()

    response = admin_client.post(f"{PRODUCTS_ADMIN}{product.id}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()


def test_the_product_list_filters_and_searches(admin_client, make_product, books):
    make_product(sku="NOVEL-1", name="A Novel", category=books)
    make_product(sku="POT-1", name="Pot")

    by_category = admin_client.get(PRODUCTS_ADMIN, {"category__id__exact": books.pk})
    by_search = admin_client.get(PRODUCTS_ADMIN, {"q": "pot"})

    assert "NOVEL-1" in by_category.content.decode()
    assert "POT-1" not in by_category.content.decode()
    assert "POT-1" in by_search.content.decode()
    assert "NOVEL-1" not in by_search.content.decode()


def test_adding_a_category_in_the_admin(admin_client):
    response = admin_client.post("/admin/catalog/catalog/category/add/", {"name": "Garden", "slug": "garden"})

    assert response.status_code == 302, response.content
    assert Category.objects.get().slug == "garden"


def test_the_add_and_change_pages_render(admin_client, make_product, kitchen):
    product = make_product()

    add_page = admin_client.get(f"{PRODUCTS_ADMIN}add/")
    change_page = admin_client.get(f"{PRODUCTS_ADMIN}{product.id}/change/")

    assert add_page.status_code == 200
    assert 'name="initial_stock"' in add_page.content.decode()
    assert change_page.status_code == 200
    assert 'name="initial_stock"' not in change_page.content.decode()
    assert admin_client.get("/admin/catalog/catalog/category/").status_code == 200
    assert admin_client.get(f"/admin/catalog/catalog/category/{kitchen.pk}/change/").status_code == 200


def test_a_product_page_stays_an_edit_form_and_every_page_has_the_bar_to_the_other_admins(
    admin_client, make_product
):
    product = make_product()

    html = admin_client.get(f"{PRODUCTS_ADMIN}{product.id}/change/").content.decode()

    assert 'name="_save"' in html
    nav = html[html.index('<nav id="service-nav"') :]
    nav = nav[: nav.index("</nav>")]
    for service in ("identity", "inventory", "orders", "payments", "notifications"):
        assert f'<a href="/admin/{service}/">{service}</a>' in nav
    assert 'aria-current="page">catalog<' in nav

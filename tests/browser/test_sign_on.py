"""Single sign-on for the six admins, in a real browser through the gateway: sign in once, every admin
opens; customers and anonymous visitors are refused; logging out ends every admin, for every cookie the
sign-in was given (docs/admin.md, docs/security.md)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import CUSTOMER, path_of, sign_in, sso_cookie

SERVICES = ("identity", "catalog", "inventory", "orders", "payments", "notifications")
# A model each admin's index lists for staff: proof the page is the real admin, not a login form.
INDEX_MARKERS = {
    "identity": "/admin/identity/identity/user/",
    "catalog": "/admin/catalog/catalog/product/",
    "inventory": "/admin/inventory/inventory/stock/",
    "orders": "/admin/orders/orders/order/",
    "payments": "/admin/payments/payments/payment/",
    "notifications": "/admin/notifications/notifications/notification/",
}


def test_staff_signs_in_once_and_every_admin_opens(page):
    sign_in(page, start="/admin/orders/")
    assert path_of(page) == "/admin/orders/"  # back where the visit started

    for service in SERVICES:
        page.goto(f"/admin/{service}/")
        assert path_of(page) == f"/admin/{service}/", f"{service} sent the signed-in visitor away"
        assert page.locator(f'a[href="{INDEX_MARKERS[service]}"]').count() >= 1, service
        others = page.locator("#service-nav a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert sorted(others) == sorted(f"/admin/{other}/" for other in SERVICES if other != service), others

    with page.expect_navigation():
        page.click("#service-nav a:text-is('payments')")  # the bar takes the operator there, signed in
    assert path_of(page) == "/admin/payments/"


def test_an_anonymous_visitor_is_sent_to_the_one_login_page(page):
    for service in SERVICES:
        page.goto(f"/admin/{service}/")
        assert path_of(page).startswith("/admin/identity/login/"), (service, page.url)
        assert page.locator("#id_username").is_visible()


def test_a_customer_cannot_sign_in_to_any_admin(page, context):
    sign_in(page, CUSTOMER, start="/admin/payments/")

    assert path_of(page).startswith("/admin/identity/login/")
    expect(page.locator(".errornote")).to_contain_text("staff account")
    assert not [c for c in context.cookies() if c["name"] == "admin_sso"]
    page.goto("/admin/payments/")
    assert path_of(page).startswith("/admin/identity/login/")


def test_logging_out_ends_every_admin_and_every_cookie_of_the_sign_in(page, context, chromium):
    sign_in(page, start="/admin/orders/")
    first = sso_cookie(context)
    page.goto("/admin/identity/login/?next=/admin/catalog/")  # signed in: a fresh cookie, then onwards
    assert path_of(page) == "/admin/catalog/"
    second = sso_cookie(context)
    assert second["value"] != first["value"]

    page.goto("/admin/payments/")
    page.click("#logout-form button, #logout-form input[type=submit]")  # the admin's own "Log out"
    assert path_of(page) == "/admin/identity/logout/"
    page.click("input[type=submit]")  # "Log out of every service's admin?"
    assert page.locator("text=Logged out").count() >= 1 or "Logged out" in page.title()

    for service in SERVICES:
        page.goto(f"/admin/{service}/")
        assert path_of(page).startswith("/admin/identity/login/"), service
    for old in (first, second):  # a copy of either cookie, in another browser, opens nothing
        other = chromium.new_context(base_url=page.url.split("/admin/")[0])
        other.add_cookies([old])
        visit = other.new_page()
        visit.goto("/admin/payments/")
        assert path_of(visit).startswith("/admin/identity/login/")
        other.close()

"""The API documentation at /docs/ in a real browser: Swagger UI served by the gateway itself (nothing
fetched from elsewhere), every service's definition, and one Authorize that carries over to all of them;
beside it, the events' AsyncAPI document as a page of its own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import path_of
from tests.shop import Shop

SERVICES = ("identity", "catalog", "inventory", "orders", "payments", "notifications")
# One protected operation per definition (GET, no parameters), tried out with the token.
PROTECTED = {
    "identity": "/api/v1/auth/me/",
    "catalog": "/api/v1/products/",
    "inventory": "/api/v1/stock/",
    "orders": "/api/v1/orders/",
    "payments": "/api/v1/payments/",
    "notifications": "/api/v1/notifications/",
}


@pytest.fixture(scope="module")
def staff_token(platform) -> str:
    return Shop(platform).staff


def _try_it_out(page, path: str) -> str:
    """Expand the GET operation at `path`, try it out, execute it; the status code Swagger UI shows."""
    summary = page.locator(f".opblock-summary-path[data-path='{path}']")
    block = page.locator(".opblock-get", has=summary).first
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    return status.inner_text().split()[0]  # the code; "Undocumented" may follow it


def test_swagger_ui_works_offline_and_one_authorize_serves_every_definition(page, off_site, staff_token):
    page.goto("/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    page.click("button.authorize")
    page.fill(".auth-container input", staff_token)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")

    statuses = {}
    for service in SERVICES:
        page.select_option(".topbar select", label=service)
        page.wait_for_selector(f".opblock-summary-path[data-path='{PROTECTED[service]}']")
        statuses[service] = _try_it_out(page, PROTECTED[service])

    assert statuses == {service: "200" for service in SERVICES}
    assert off_site == []  # Swagger UI, its styles and the definitions all came from the gateway


def test_without_authorizing_a_protected_operation_answers_401(page):
    page.goto("/docs/")
    page.select_option(".topbar select", label="orders")
    page.wait_for_selector(f".opblock-summary-path[data-path='{PROTECTED['orders']}']")

    assert _try_it_out(page, PROTECTED["orders"]) == "401"


def test_the_events_page_shows_each_version_of_an_event_with_its_fields_offline(page, off_site):
    """From /docs/, the Events link opens the AsyncAPI page: order.created's two versions, each with its
    data's fields, reached from the table of contents; the raw document is one link away."""
    page.goto("/docs/")
    page.get_by_role("link", name="Events (AsyncAPI)").click()
    page.wait_for_url("**/docs/events.html")
    assert path_of(page) == "/docs/events.html"

    contents = page.locator("nav li", has=page.locator("a[href='#order.created']"))
    for version in (1, 2):
        contents.get_by_role("link", name=f"v{version}", exact=True).click()
        block = page.locator(f"article[id='order.created.v{version}']")
        expect(block).to_be_in_viewport()
        expect(block.locator("h3")).to_have_text(f"order.created version {version}")
        expect(block.locator("table.fields code", has_text="order_id")).to_be_visible()
    consumers = page.locator("[id='order.created'] dt:text-is('Consumers') + dd")
    expect(consumers).to_have_text("inventory (queue inventory.events)")
    assert page.locator("#raw-document").get_attribute("href") == "/docs/asyncapi.json"
    assert off_site == []  # the page and everything it shows came from the gateway

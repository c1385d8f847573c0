"""One test per operator job, in a real browser through the gateway, signed in once at identity's admin:
find orders by status and open one; adjust stock (the audit names identity's user); refund a payment
after a confirmation, told the truth about what happens; look at a parked message and replay it."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from shared.testing import park_dead_letter, wait_until
from tests.browser.conftest import path_of, sign_in
from tests.shop import Shop


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="module")
def confirmed_order(shop) -> dict:
    """A customer's confirmed order of a product of its own (so it has a payment and stock to adjust)."""
    customer = shop.new_customer()
    product = shop.new_product(stock=10, price="12.50")
    placed = shop.place_order(customer, [(product, 2)])
    assert placed.status_code == 202, placed.text
    order = shop.wait_for_terminal(customer, placed.json()["id"])
    assert order["status"] == "confirmed", order
    return order | {"product_id": product, "customer": customer}


def staff_id(shop: Shop) -> str:
    import jwt

    return jwt.decode(shop.staff, options={"verify_signature": False})["user_id"]


def select_row(page, text: str) -> None:
    """Tick the change list's checkbox on the row that shows `text`."""
    page.locator("#result_list tbody tr", has_text=text).locator("input.action-select").check()


def run_action(page, action: str) -> None:
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("button[name=index]")


def test_orders_are_listed_by_status_and_one_opens_with_its_items_and_history(page, confirmed_order):
    sign_in(page, start="/admin/orders/orders/order/")
    with page.expect_navigation():
        page.click("#changelist-filter a:text-is('Confirmed')")
    assert "status__exact=confirmed" in page.url
    statuses = page.locator("#result_list tbody td.field-status").all_inner_texts()
    assert statuses and set(statuses) == {"Confirmed"}, statuses

    with page.expect_navigation():
        page.click(f"#result_list a[href*='{confirmed_order['id']}']")
    assert confirmed_order["id"] in path_of(page)
    content = page.locator("#content")
    expect(content).to_contain_text("Confirmed")
    for status in ("pending", "awaiting_payment", "confirmed"):  # the history, oldest first
        expect(content).to_contain_text(status.replace("_", " "), ignore_case=True)
    expect(content).to_contain_text("25.00")  # 2 x 12.50
    expect(page.locator("input[name=_save]")).to_have_count(0)  # view only


def test_stock_is_adjusted_with_a_reason_and_the_audit_names_identitys_user(page, shop, confirmed_order):
    product = confirmed_order["product_id"]
    before = shop.stock(product)
    reason = f"cycle count {uuid.uuid4().hex[:6]}"
    sign_in(page, start="/admin/inventory/inventory/stock/")
    page.fill("#searchbar", product)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    select_row(page, product)
    run_action(page, "adjust_stock")

    page.fill("input[name=delta]", "3")
    page.fill("[name=reason]", reason)
    with page.expect_navigation():
        page.click("input[type=submit][value='Adjust stock']")

    expect(page.locator(".messagelist")).to_contain_text("+3")
    assert shop.stock(product)["on_hand"] == before["on_hand"] + 3
    page.goto(f"/admin/inventory/inventory/stockadjustment/?q={reason.replace(' ', '+')}")
    row = page.locator("#result_list tbody tr", has_text=reason)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(staff_id(shop))  # identity's id, never a local admin row's


def test_a_refund_is_confirmed_first_and_the_page_says_what_really_happens(page, shop, confirmed_order):
    payment = shop.payments(confirmed_order["id"])[0]
    assert payment["status"] == "captured"
    sign_in(page, start=f"/admin/payments/payments/payment/?q={confirmed_order['id']}")
    select_row(page, confirmed_order["id"][:8])
    run_action(page, "refund")

    expect(page.locator("#content")).to_contain_text(confirmed_order["id"][:8])  # what will be refunded
    assert shop.payments(confirmed_order["id"])[0]["status"] == "captured"  # nothing happened yet
    with page.expect_navigation():
        page.click("input[type=submit]")  # "Yes, refund them"

    message = page.locator(".messagelist").inner_text()
    assert "could not" not in message.lower(), message
    assert "requested" in message.lower(), message
    wait_until(
        lambda: shop.payments(confirmed_order["id"])[0]["status"] == "refunded",
        timeout=30, message="the refund the page promised",
    )  # fmt: skip


def test_a_parked_message_is_shown_and_replayed_to_its_queue(page, platform, shop):
    """A welcome e-mail event that died in notifications (as during an e-mail outage) is parked; the
    operator sees it, replays it, and the customer's notification appears."""
    email, password = f"parked-{uuid.uuid4().hex[:10]}@example.com", "parked-pass-phrase-1"
    body = {"email": email, "password": password, "full_name": "Parked"}
    registered = shop.call("POST", "identity", "/api/v1/auth/register/", json=body)
    assert registered.status_code == 201, registered.text
    customer = shop.login(email, password)
    wait_until(lambda: len(shop.notifications(customer)) == 1, timeout=20, message="the first welcome e-mail")
    user_id, event_id = registered.json()["id"], str(uuid.uuid4())
    envelope = {
        "id": event_id, "type": "user.registered", "version": 1, "occurred_at": "2026-12-04T00:00:00Z",
        "source": "identity", "correlation_id": event_id, "causation_id": None,
        "data": {"user_id": user_id, "email": email, "full_name": "Parked", "roles": ["customer"]},
    }  # fmt: skip
    park_dead_letter(
        platform.broker_url, dead_letter_queue="notifications.dead-letter", died_in="notifications.events",
        args=(envelope,), task_id=event_id,
    )  # fmt: skip

    sign_in(page, start="/admin/notifications/messaging/dead-letters/")
    row = page.locator("#result_list tbody tr", has_text=event_id)
    expect(row).to_contain_text("user.registered")
    expect(row).to_contain_text("delivery_limit")
    row.locator("input[name=ids]").check()
    with page.expect_navigation():
        page.click("button[value=replay_selected]")

    expect(page.locator(".messagelist")).to_contain_text("replayed")
    expect(page.locator("#result_list tbody tr", has_text=event_id)).to_have_count(0)
    wait_until(
        lambda: len(shop.notifications(customer)) == 2, timeout=20, message="the replayed event's e-mail"
    )


def test_an_orders_saga_timeline_opens_from_its_page_and_shows_every_service_in_time_order(
    page, confirmed_order
):
    sign_in(page, start=f"/admin/orders/orders/order/{confirmed_order['id']}/change/")
    with page.expect_navigation():
        page.click("a.timelinelink")

    expect(page.locator("#saga-summary")).to_have_attribute("data-terminal", "true")
    services = page.locator("#saga-services tbody tr")
    expect(services).to_have_count(6)
    assert set(services.evaluate_all("rows => rows.map(row => row.dataset.available)")) == {"true"}
    entries = page.locator("#saga-timeline tr.timeline-entry")
    rows = entries.evaluate_all(
        "rows => rows.map(row => [row.dataset.at, row.dataset.service, row.dataset.what])"
    )
    assert [at for at, _service, _what in rows] == sorted(at for at, _service, _what in rows)  # time order
    assert {service for _at, service, _what in rows} >= {"orders", "inventory", "payments", "notifications"}
    what = [entry for _at, _service, entry in rows]
    for event in ("order.created", "inventory.reserved", "payment.succeeded", "order.confirmed"):
        assert event in what, what
    assert what.index("order.created") < what.index("inventory.reserved") < what.index("payment.succeeded")

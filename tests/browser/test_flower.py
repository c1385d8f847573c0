"""Flower at /flower/ in a real browser: a member of staff signed in to the admin opens it without a token
and sees workers, tasks and every queue; anyone else is refused."""

from __future__ import annotations

from tests.browser.conftest import sign_in
from tests.shop import Shop

SERVICES = ("identity", "catalog", "inventory", "orders", "payments", "notifications")


def test_staff_signed_in_to_the_admin_opens_flower_and_sees_workers_tasks_and_queues(page):
    sign_in(page, start="/admin/orders/")

    page.goto("/flower/")
    for service in SERVICES:
        page.wait_for_selector(f"text={service}@")  # one worker per service, by its hostname
    page.goto("/flower/tasks")
    assert "Tasks" in page.title()
    page.goto("/flower/broker")
    for service in SERVICES:
        for queue in (f"{service}.events", f"{service}.tasks", f"{service}.dead-letter"):
            assert page.locator("td", has_text=queue).count() >= 1, queue


def test_anonymous_visitors_and_customers_are_refused(page, context, platform):
    anonymous = page.goto("/flower/")
    assert anonymous.status == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    customer = Shop(platform).login("customer@example.com", "customer-demo-pass-1")
    context.set_extra_http_headers({"Authorization": f"Bearer {customer}"})
    refused = page.goto("/flower/")
    assert refused.status == 403
    assert refused.json()["error"]["code"] == "permission_denied"

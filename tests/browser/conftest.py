"""Operators' pages as operators see them: Debian's Chromium, driven by Playwright, only through the
gateway of the e2e instance (tests/conftest.py starts it), as a person would use them.

Chromium is launched headless with the flags this machine needs (no sandbox as root, no background
networking, which a closed network refuses); `playwright install` is never run. Every request the pages
make to anywhere but the gateway is aborted and recorded, so a page that needs the internet fails here.
When a test fails, a screenshot of each of its pages is saved under test-artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts" / "browser"
STAFF = ("staff@example.com", "staff-demo-pass-1")
CUSTOMER = ("customer@example.com", "customer-demo-pass-1")
SSO_COOKIE = "admin_sso"
TIMEOUT_MS = 15_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


class OffSiteRequests(list):
    """URLs the pages asked for outside the gateway (aborted)."""


@pytest.fixture
def off_site() -> OffSiteRequests:
    return OffSiteRequests()


@pytest.fixture
def context(chromium, platform, off_site, request) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) pointed at the gateway."""
    gateway = platform.gateway_url("")
    context = chromium.new_context(base_url=gateway, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)

    def only_the_gateway(route):
        url = route.request.url
        if url.startswith(gateway) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            off_site.append(url)
            route.abort()

    context.route(re.compile(".*"), only_the_gateway)
    yield context
    if getattr(request.node, "report_call", None) is not None and request.node.report_call.failed:
        save_screenshots(context, request.node.name)
    context.close()


def save_screenshots(context: BrowserContext, test_name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    for number, page in enumerate(context.pages, start=1):
        try:
            page.screenshot(path=str(ARTIFACTS / f"{safe}-{number}.png"), full_page=True)
        except Exception as exc:  # a closed or crashed page: the failure itself is what matters
            (ARTIFACTS / f"{safe}-{number}.txt").write_text(f"no screenshot: {exc}\n")


@pytest.fixture
def page(context) -> Page:
    return context.new_page()


def sign_in(page: Page, credentials=STAFF, start: str = "/admin/orders/") -> None:
    """Open an admin page, get sent to identity's login, fill it in and submit, as a person does."""
    page.goto(start)
    assert page.url.split("?")[0].endswith("/admin/identity/login/"), page.url
    email, password = credentials
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")


def sso_cookie(context: BrowserContext) -> dict:
    cookies = [cookie for cookie in context.cookies() if cookie["name"] == SSO_COOKIE]
    assert len(cookies) == 1, context.cookies()
    return cookies[0]


def path_of(page: Page) -> str:
    return "/" + page.url.split("/", 3)[3]

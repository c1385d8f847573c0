"""Every service's Django admin through the gateway, with identity's login as the single sign-on, and
the /docs/ page working offline. A browser is played by a requests.Session: cookies, CSRF tokens and
Origin headers as a browser sends them. See docs/admin.md.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from html.parser import HTMLParser

import jwt
import pytest
import requests

from shared.testing import admin_sso_claims, generate_key_pair
from tests.addresses import from_address, until_limited
from tests.admin_session import (
    CUSTOMER,
    LOGIN_PATH,
    SSO_COOKIE,
    STAFF,
    admin_login,
    browser_session,
    csrf_token,
    origin,
)
from tests.conftest import ROOT

# A model list each admin index shows when the visitor may use it (the service's own app).
INDEX_MARKERS = {
    "identity": "/admin/identity/identity/user/",
    "catalog": "/admin/catalog/catalog/product/",
    "inventory": "/admin/inventory/inventory/stock/",
    "orders": "/admin/orders/orders/order/",
    "payments": "/admin/payments/payments/payment/",
    "notifications": "/admin/notifications/notifications/notification/",
}


def _admin_index(platform, browser, service: str) -> requests.Response:
    return browser.get(platform.gateway_url(f"/admin/{service}/"), timeout=10)


def _assert_sent_to_identity_login(answer: requests.Response, service: str) -> None:
    """Followed redirects ended on identity's login form, asked to come back to the service's admin."""
    assert answer.status_code == 200, (service, answer.status_code)
    assert answer.url.split("?")[0].endswith(LOGIN_PATH), (service, answer.url)
    assert 'name="password"' in answer.text, service
    assert INDEX_MARKERS[service] not in answer.text, service


@pytest.fixture(scope="module")
def staff_browser(platform):
    browser = browser_session()
    answer = admin_login(platform, browser, STAFF)
    assert answer.status_code == 302, answer.text
    return browser


# --- single sign-on ------------------------------------------------------------------------------------


def test_staff_logs_in_once_and_every_admin_lets_them_in(platform, staff_browser):
    assert SSO_COOKIE in staff_browser.cookies
    for service in platform.services:
        index = _admin_index(platform, staff_browser, service)
        assert index.status_code == 200, (service, index.status_code, index.url)
        assert index.url == platform.gateway_url(f"/admin/{service}/"), index.url  # no detour
        assert INDEX_MARKERS[service] in index.text, service  # the model list, with gateway paths
        assert f"/admin/{service}/messaging/dead-letters/" in index.text, service
        assert f"Order platform: {service}" in index.text
        assert len(index.headers["X-Request-ID"]) == 32  # through the edge


def test_the_sso_cookie_is_httponly_samesite_lax_and_names_its_sign_in(platform):
    answer = admin_login(platform, browser_session(), STAFF, next_path="/admin/orders/")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/orders/"
    set_cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith(f"{SSO_COOKIE}="))
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes, set_cookie
    # Path=/ reaches the admins and Flower, the only two that honour it (docs/admin.md).
    assert "Path=/;" in set_cookie and "SameSite=Lax" in set_cookie
    claims = jwt.decode(set_cookie.split(";")[0].split("=", 1)[1], options={"verify_signature": False})
    assert claims["aud"] == "admin" and claims["is_staff"] is True
    assert claims["sid"] and claims["ver"] >= 1  # the sign-in and the user's version: both revocable
    assert 0 < claims["exp"] - claims["iat"] <= 3600  # short-lived


def test_admin_assets_load_through_the_gateway(platform, staff_browser):
    for service in platform.services:
        page = _admin_index(platform, staff_browser, service)
        assets = _AssetLinks.of(page.text)
        assert any(path.endswith(".css") for path in assets), (service, assets)
        assert any(path.endswith(".js") for path in assets), (service, assets)
        for path in assets:
            assert path.startswith(f"/static/{service}/"), (service, path)
            asset = staff_browser.get(platform.gateway_url(path), timeout=10)
            assert asset.status_code == 200, (path, asset.status_code)
            expected = "text/css" if path.endswith(".css") else "javascript"
            assert expected in asset.headers["Content-Type"], (path, asset.headers["Content-Type"])
            assert len(asset.content) > 100, path


def test_a_form_posts_through_the_gateway_with_csrf_and_refuses_a_foreign_origin(platform, staff_browser):
    add_url = platform.gateway_url("/admin/catalog/catalog/category/add/")
    form = staff_browser.get(add_url, timeout=10)
    assert form.status_code == 200, form.url
    slug = f"sso-{uuid.uuid4().hex[:8]}"
    fields = {"csrfmiddlewaretoken": csrf_token(form), "name": f"SSO {slug}", "slug": slug}

    foreign = staff_browser.post(
        add_url, data=fields, headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=10
    )
    saved = staff_browser.post(
        add_url, data=fields, headers=origin(platform), allow_redirects=False, timeout=10
    )

    assert foreign.status_code == 403, foreign.status_code
    assert saved.status_code == 302, saved.text[:2000]
    assert saved.headers["Location"].startswith("/admin/catalog/catalog/category/")
    listed = staff_browser.get(platform.gateway_url("/admin/catalog/catalog/category/"), params={"q": slug})
    assert slug in listed.text


def test_anonymous_visitors_are_sent_to_identity_login_and_back(platform):
    browser = browser_session()
    first = browser.get(platform.gateway_url("/admin/payments/"), allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/admin/payments/login/?next=/admin/payments/")
    second = browser.get(platform.gateway_url(first.headers["Location"]), allow_redirects=False, timeout=10)
    assert second.status_code == 302
    assert second.headers["Location"] == f"{LOGIN_PATH}?next=%2Fadmin%2Fpayments%2F"
    for service in platform.services:
        _assert_sent_to_identity_login(_admin_index(platform, browser, service), service)

    logged_in = admin_login(platform, browser, STAFF, next_path="/admin/payments/")
    assert logged_in.headers["Location"] == "/admin/payments/"
    assert INDEX_MARKERS["payments"] in _admin_index(platform, browser, "payments").text


def test_identity_session_renews_a_missing_cookie_without_asking_again(platform):
    browser = browser_session()
    assert admin_login(platform, browser, STAFF).status_code == 302
    browser.cookies.clear(domain="127.0.0.1", path="/", name=SSO_COOKIE)
    assert SSO_COOKIE not in browser.cookies

    index = _admin_index(platform, browser, "inventory")  # -> inventory login -> identity -> back

    assert index.url == platform.gateway_url("/admin/inventory/"), index.url
    assert INDEX_MARKERS["inventory"] in index.text
    assert SSO_COOKIE in browser.cookies


def test_a_customer_gets_no_admin_anywhere(platform, http):
    browser = browser_session()
    refused = admin_login(platform, browser, CUSTOMER)
    assert refused.status_code == 200  # the form again, with its error
    assert "staff account" in refused.text
    assert SSO_COOKIE not in browser.cookies
    for service in platform.services:
        _assert_sent_to_identity_login(_admin_index(platform, browser, service), service)

    # Nor does a customer get in with their API token, or a well-signed cookie without is_staff.
    access = http.post(
        platform.url("identity", "/api/v1/auth/token/"),
        json={"email": CUSTOMER[0], "password": CUSTOMER[1]},
        timeout=10,
    )
    assert access.status_code == 200, access.text
    for cookie in (access.json()["access"], _signed_cookie(is_staff=False)):
        _assert_refused_everywhere(platform, cookie)


# --- refused cookies -----------------------------------------------------------------------------------


def _signed_cookie(key: str | None = None, **overrides) -> str:
    key = key or (ROOT / "var" / "keys" / "jwt-private.pem").read_text()
    return jwt.encode(admin_sso_claims(**overrides), key, algorithm="RS256")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _other_private_key() -> str:
    return generate_key_pair()[0].decode()


def _assert_refused_everywhere(platform, cookie: str) -> None:
    for service in platform.services:
        if service == "identity":  # identity trusts its own session only, never the cookie
            continue
        browser = browser_session()
        browser.cookies.set(SSO_COOKIE, cookie, domain="127.0.0.1", path="/")
        _assert_sent_to_identity_login(_admin_index(platform, browser, service), service)


def test_forged_tampered_expired_and_foreign_cookies_are_refused(platform, staff_browser):
    valid = staff_browser.cookies[SSO_COOKIE]
    header, _payload, signature = valid.split(".")
    claims = jwt.decode(valid, options={"verify_signature": False})
    now = int(time.time())
    forged = {
        "tampered": f"{header}.{_b64(claims | {'user_id': str(uuid.uuid4())})}.{signature}",
        "other_key": _signed_cookie(_other_private_key()),
        "expired": _signed_cookie(iat=now - 600, exp=now - 60),
        "wrong_audience": _signed_cookie(aud="api"),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(admin_sso_claims())}.",
        "garbage": "not-a-token",
    }
    for name, cookie in forged.items():
        try:
            _assert_refused_everywhere(platform, cookie)
        except AssertionError as exc:
            raise AssertionError(f"{name} cookie accepted") from exc
    # The control: the same helper lets a genuine cookie in.
    genuine = browser_session()
    genuine.cookies.set(SSO_COOKIE, valid, domain="127.0.0.1", path="/")
    assert INDEX_MARKERS["orders"] in _admin_index(platform, genuine, "orders").text


def test_logout_at_identity_ends_access_everywhere_even_for_a_copied_cookie(platform):
    browser = browser_session()
    assert admin_login(platform, browser, STAFF).status_code == 302
    copied = browser.cookies[SSO_COOKIE]
    assert INDEX_MARKERS["catalog"] in _admin_index(platform, browser, "catalog").text

    # The catalog admin's "Log out" (a CSRF-checked POST) hands over to identity, which asks first.
    catalog_index = _admin_index(platform, browser, "catalog")
    handed_over = browser.post(
        platform.gateway_url("/admin/catalog/logout/"),
        data={"csrfmiddlewaretoken": csrf_token(catalog_index)},
        headers=origin(platform),
        timeout=10,
    )
    assert handed_over.url == platform.gateway_url("/admin/identity/logout/"), handed_over.url
    assert "Log out of every service" in handed_over.text
    logged_out = browser.post(
        platform.gateway_url("/admin/identity/logout/"),
        data={"csrfmiddlewaretoken": csrf_token(handed_over)},
        headers=origin(platform),
        timeout=10,
    )
    assert logged_out.status_code == 200, logged_out.status_code

    assert SSO_COOKIE not in browser.cookies
    for service in platform.services:
        _assert_sent_to_identity_login(_admin_index(platform, browser, service), service)
    _assert_refused_everywhere(platform, copied)  # revoked, not only deleted from this browser


# --- the direct port -----------------------------------------------------------------------------------


def test_a_services_own_port_sends_bare_admin_to_its_prefix(platform, http):
    answer = http.get(platform.url("orders", "/admin/"), allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/orders/"


# --- /docs/ --------------------------------------------------------------------------------------------


class _AssetLinks(HTMLParser):
    """The src of every script and href of every stylesheet/icon link of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.links


def test_docs_load_swagger_ui_from_the_gateway_only(platform, http):
    page = http.get(platform.gateway_url("/docs/"), timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assets = _AssetLinks.of(page.text)
    assert len(assets) >= 3, assets
    assert "cdn" not in page.text.lower()
    types = {".css": "text/css", ".js": "application/javascript", ".png": "image/png"}
    for path in assets:
        assert path.startswith("/") and not path.startswith("//"), path  # same origin
        asset = http.get(platform.gateway_url(path), timeout=10)
        assert asset.status_code == 200, path
        expected = next(value for suffix, value in types.items() if path.endswith(suffix))
        assert asset.headers["Content-Type"].startswith(expected), (path, asset.headers["Content-Type"])
    bundle = http.get(platform.gateway_url("/docs/swagger-ui/swagger-ui-bundle.js"), timeout=10)
    assert "SwaggerUIBundle" in bundle.text


# --- rate limit (last: it spends this address's admin login budget) -------------------------------------


def test_admin_login_posts_are_rate_limited_per_address(platform):
    """From an address of its own (the suite signs in from 127.0.0.1 often): POSTs to the login form are
    counted whatever they carry, and the answer past the limit is the contract's 429."""
    statuses = until_limited("127.0.0.5", platform.gateway_port, "POST", LOGIN_PATH, {}, most=300)
    assert statuses[0] != 429 and statuses[-1] == 429, statuses[-3:]
    status, headers, body = from_address("127.0.0.5", platform.gateway_port, "POST", LOGIN_PATH, {})
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) >= 1
    browser = browser_session()
    # Reading the form is not limited by it.
    assert browser.get(platform.gateway_url(LOGIN_PATH), timeout=10).status_code == 200


# --- what a browser really sends ---------------------------------------------------------------------


def chromium_form_post_headers(page: requests.Response) -> dict:
    """The headers Chromium 156 sends with a same-origin form POST (recorded from tests/browser with
    Playwright), for the page `page` served. Origin and Referer follow the page's Referrer-Policy as the
    Fetch standard says: under `no-referrer` a POST's Origin is the string "null" and there is no Referer;
    under `same-origin` (or the browser's default) both name the page's own origin."""
    policy = page.headers.get("Referrer-Policy", "strict-origin-when-cross-origin")
    origin_of_page = page.url.split("/admin/")[0]
    headers = {
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Content-Type": "application/x-www-form-urlencoded",
        "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-User": "?1", "Upgrade-Insecure-Requests": "1",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/156.0.0.0 Safari/537.36",
    }  # fmt: skip
    if policy == "no-referrer":
        return headers | {"Origin": "null"}
    return headers | {"Origin": origin_of_page, "Referer": page.url}


def test_the_login_form_accepts_the_post_a_browser_makes_of_the_page_the_gateway_serves(platform):
    """Regression: the gateway's `Referrer-Policy: no-referrer` made browsers send `Origin: null`, which
    Django's CSRF origin check refuses: no admin form could be submitted through the gateway."""
    browser = browser_session()
    page = browser.get(platform.gateway_url(LOGIN_PATH), timeout=10)
    assert page.headers["Referrer-Policy"] != "no-referrer"
    fields = {"csrfmiddlewaretoken": csrf_token(page), "username": STAFF[0], "password": STAFF[1]}

    signed_in = browser.post(
        page.url, data=fields, headers=chromium_form_post_headers(page), allow_redirects=False, timeout=10
    )

    assert signed_in.status_code == 302, signed_in.text[:500]
    assert SSO_COOKIE in browser.cookies


def test_a_form_post_with_the_origin_no_referrer_produced_is_refused(platform):
    """Why the policy matters: the very POST a browser makes under `no-referrer` is a CSRF failure."""
    browser = browser_session()
    page = browser.get(platform.gateway_url(LOGIN_PATH), timeout=10)
    fields = {"csrfmiddlewaretoken": csrf_token(page), "username": STAFF[0], "password": STAFF[1]}
    headers = chromium_form_post_headers(page) | {"Origin": "null"}
    headers.pop("Referer")

    refused = browser.post(page.url, data=fields, headers=headers, allow_redirects=False, timeout=10)

    assert refused.status_code == 403
    assert SSO_COOKIE not in browser.cookies

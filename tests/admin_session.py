"""The admins through the gateway as a plain HTTP client sees them: a cookie-keeping session, identity's
login form with its CSRF token and the Origin header a browser sends, and an admin form's fields read
back so that a change can be posted as the browser would. Used by the system and security suites; the
browser suite uses real Chromium instead.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import requests

LOGIN_PATH = "/admin/identity/login/"
SSO_COOKIE = "admin_sso"
STAFF = ("staff@example.com", "staff-demo-pass-1")
CUSTOMER = ("customer@example.com", "customer-demo-pass-1")
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def browser_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def origin(platform) -> dict:
    """The headers a browser adds to a form POST of a page the gateway served (Referrer-Policy
    same-origin: the Origin is the page's own)."""
    return {"Origin": platform.gateway_url("")}


def csrf_token(page: requests.Response) -> str:
    match = _CSRF_FIELD.search(page.text)
    assert match, f"no CSRF field in {page.url}: {page.text[:500]}"
    return match.group(1)


def admin_login(platform, session, credentials, next_path: str | None = None) -> requests.Response:
    """Fill in identity's admin login form through the gateway; the answer, not followed."""
    query = f"?next={next_path}" if next_path else ""
    form = session.get(platform.gateway_url(f"{LOGIN_PATH}{query}"), timeout=10)
    assert form.status_code == 200, form.text
    email, password = credentials
    fields = {"csrfmiddlewaretoken": csrf_token(form), "username": email, "password": password}
    if next_path:
        fields["next"] = next_path
    return session.post(
        platform.gateway_url(f"{LOGIN_PATH}{query}"),
        data=fields,
        headers=origin(platform),
        allow_redirects=False,
        timeout=10,
    )


def signed_in_session(platform, credentials=STAFF) -> requests.Session:
    session = browser_session()
    answer = admin_login(platform, session, credentials)
    assert answer.status_code == 302, answer.text[:2000]
    assert SSO_COOKIE in session.cookies
    return session


class FormFields(HTMLParser):
    """The values a browser would submit for the form with id `form_id` (checked boxes, selected
    options, text and hidden inputs, textareas), as {name: [values]}."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or ("name" not in attrs and tag != "option"):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            if kind not in ("submit", "button", "file"):
                self.fields.setdefault(attrs["name"], []).append(attrs.get("value", "on"))
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields.setdefault(self._select, []).append(attrs.get("value", ""))
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields.setdefault(attrs["name"], []).append("")

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False

    @classmethod
    def of(cls, html: str, form_id: str) -> dict[str, list[str]]:
        parser = cls(form_id)
        parser.feed(html)
        return parser.fields

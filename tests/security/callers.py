"""The attacker's matrix's callers, made for real on the e2e instance: customers, staff, a demoted member
of staff, users deactivated through the API and through identity's admin, one reactivated, every kind of
broken or misused token, forged identity headers, a service token with and without its scope, and
admin sign-on cookies current, stale and forged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass

import jwt

from shared.testing import generate_key_pair
from tests.admin_session import SSO_COOKIE, STAFF, FormFields, csrf_token, origin, signed_in_session
from tests.conftest import ROOT
from tests.security.matrix import Caller
from tests.shop import Shop

ISSUER = "order-platform-identity"
PASSWORD = "matrix-pass-phrase-71"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _local_private_key() -> str:
    """The development key pair manage_all.py makes in var/keys/ (the e2e instance's identity signs with
    it): the suite forges tokens exactly as well signed as identity's, with claims identity never gives."""
    return (ROOT / "var" / "keys" / "jwt-private.pem").read_text()


def _public_key() -> str:
    return (ROOT / "var" / "keys" / "jwt-public.pem").read_text()


def _signed(claims: dict) -> str:
    return jwt.encode(claims, _local_private_key(), algorithm="RS256")


def _alg_none(claims: dict) -> str:
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_public_key(claims: dict) -> str:
    """The classic confusion attack: HMAC-SHA256 keyed with the RSA public key's PEM text."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(_public_key().encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """What the matrix acts on: the callers, and the objects customer A owns (path parameters)."""

    callers: list[Caller]
    objects: dict[str, str]
    shop: Shop


def build(platform) -> World:
    shop = Shop(platform)
    customer, other = new_user(shop), new_user(shop)
    staff_id = _claims(shop.staff)["user_id"]

    objects = _objects_of(shop, customer)

    demoted = _staff_then(shop, lambda user_id: patch_user(shop, user_id, is_staff=False))
    deactivated_api = _staff_then(shop, lambda user_id: patch_user(shop, user_id, is_active=False))
    reactivated = _user_then(shop, lambda user_id: [
        patch_user(shop, user_id, is_active=False), patch_user(shop, user_id, is_active=True),
    ])  # fmt: skip
    deactivated_admin = _user_then(shop, lambda user_id: _deactivate_in_identity_admin(platform, user_id))

    staff_session = signed_in_session(platform, STAFF)
    staff_cookie = staff_session.cookies[SSO_COOKIE]
    demoted_cookie = _staff_cookie_then_demoted(platform, shop)

    now = int(time.time())
    a_claims = _claims(customer["access"])
    foreign_private = generate_key_pair()[0].decode()
    service_token = _service_token(platform, shop)
    unscoped = _signed({
        "iss": ISSUER, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "aud": "platform-services",
        "token_type": "service", "client_id": "orders", "scope": "",
    })  # fmt: skip

    callers = [
        Caller("anonymous", {}, {}),
        Caller("forged_identity_headers", {"X-User-Id": staff_id, "X-User-Roles": "staff"}, {}),
        Caller("customer", _bearer(customer["access"]), {}),
        Caller("other_customer", _bearer(other["access"]), {}),
        Caller("staff", _bearer(shop.staff), {}),
        Caller("demoted_staff", _bearer(demoted), {}),
        Caller("deactivated_by_api", _bearer(deactivated_api), {}),
        Caller("deactivated_by_admin", _bearer(deactivated_admin), {}),
        Caller("reactivated_with_an_old_token", _bearer(reactivated), {}),
        Caller("expired", _bearer(_signed(a_claims | {"iat": now - 600, "exp": now - 60})), {}),
        Caller("tampered", _bearer(_tampered(customer["access"])), {}),
        Caller("alg_none", _bearer(_alg_none(a_claims | {"is_staff": True})), {}),
        Caller("hs256_with_public_key", _bearer(_hs256_with_public_key(a_claims | {"is_staff": True})), {}),
        Caller("foreign_key", _bearer(jwt.encode(a_claims, foreign_private, algorithm="RS256")), {}),
        Caller("refresh_as_access", _bearer(customer["refresh"]), {}),
        Caller("sign_on_cookie_as_bearer", _bearer(staff_cookie), {}),
        Caller("service", _bearer(service_token), {}),
        Caller("service_without_scope", _bearer(unscoped), {}),
        Caller("staff_sign_on", {}, {SSO_COOKIE: staff_cookie}),
        Caller("demoted_staff_sign_on", {}, {SSO_COOKIE: demoted_cookie}),
        Caller("customer_token_as_sign_on", {}, {SSO_COOKIE: customer["access"]}),
        Caller(
            "forged_sign_on", {}, {SSO_COOKIE: jwt.encode(_claims(staff_cookie), foreign_private, "RS256")}
        ),
    ]
    return World(callers=callers, objects=objects, shop=shop)


# --- users -------------------------------------------------------------------------------------------------


def new_user(shop: Shop) -> dict:
    email = f"matrix-{uuid.uuid4().hex[:12]}@example.com"
    registered = shop.call("POST", "identity", "/api/v1/auth/register/",
                           json={"email": email, "password": PASSWORD, "full_name": "Matrix"})  # fmt: skip
    assert registered.status_code == 201, registered.text
    tokens = shop.call("POST", "identity", "/api/v1/auth/token/", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return tokens.json() | {"email": email, "id": registered.json()["id"]}


def sign_in(shop: Shop, email: str) -> dict:
    tokens = shop.call("POST", "identity", "/api/v1/auth/token/", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def patch_user(shop: Shop, user_id: str, **fields) -> None:
    answer = shop.call("PATCH", "identity", f"/api/v1/users/{user_id}/", shop.staff, json=fields)
    assert answer.status_code == 200, answer.text


def _user_then(shop: Shop, change) -> str:
    """A customer's access token, issued before `change(user_id)` happened to them."""
    user = new_user(shop)
    change(user["id"])
    return user["access"]


def _staff_then(shop: Shop, change) -> str:
    """An access token issued while the user was staff, then `change(user_id)`."""
    user = new_user(shop)
    patch_user(shop, user["id"], is_staff=True)
    access = sign_in(shop, user["email"])["access"]
    assert _claims(access)["is_staff"] is True
    change(user["id"])
    return access


def _tampered(token: str) -> str:
    """The payload changed to staff, the header and signature kept."""
    header, _payload, signature = token.split(".")
    payload = _b64(json.dumps(_claims(token) | {"is_staff": True, "roles": ["staff"]}).encode())
    return f"{header}.{payload}.{signature}"


def _deactivate_in_identity_admin(platform, user_id: str) -> None:
    """Untick Active on the user's change form in identity's admin and save, as a member of staff does."""
    session = signed_in_session(platform, STAFF)
    url = platform.gateway_url(f"/admin/identity/identity/user/{user_id}/change/")
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.status_code
    fields = FormFields.of(page.text, "user_form")
    fields.pop("is_active", None)
    fields["csrfmiddlewaretoken"] = [csrf_token(page)]
    saved = session.post(url, data=fields, headers=origin(platform), allow_redirects=False, timeout=10)
    assert saved.status_code == 302, saved.text[:3000]


def _staff_cookie_then_demoted(platform, shop: Shop) -> str:
    user = new_user(shop)
    patch_user(shop, user["id"], is_staff=True)
    session = signed_in_session(platform, (user["email"], PASSWORD))
    cookie = session.cookies[SSO_COOKIE]
    patch_user(shop, user["id"], is_staff=False)
    return cookie


# --- services and objects ----------------------------------------------------------------------------------


def _service_token(platform, shop: Shop) -> str:
    """orders' credentials, from the instance's secrets, exchanged at identity's grant."""
    secrets = json.loads((ROOT / "var" / platform.env["PLATFORM_INSTANCE"] / "secrets.json").read_text())
    answer = shop.http.post(
        shop.url("identity", "/internal/v1/oauth/token/"),
        data={
            "grant_type": "client_credentials",
            "client_id": "orders",
            "client_secret": secrets["orders.client_secret"],
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _objects_of(shop: Shop, customer: dict) -> dict[str, str]:
    """An order of customer A (confirmed, so it has a payment and a notification) and its product."""
    product = shop.new_product(stock=5)
    placed = shop.place_order(customer["access"], [(product, 1)])
    assert placed.status_code == 202, placed.text
    order = shop.wait_for_terminal(customer["access"], placed.json()["id"])
    assert order["status"] == "confirmed", order
    payment = shop.payments(order["id"])[0]
    notification = shop.notifications(customer["access"])[0]
    return {
        "user": customer["id"], "product": product, "order": order["id"], "payment": payment["id"],
        "notification": notification["id"],
    }  # fmt: skip

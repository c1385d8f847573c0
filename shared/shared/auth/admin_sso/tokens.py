"""The single sign-on cookie as every service but identity sees it: read, verified, refused.

identity issues the cookie (identity.admin_site) for one admin sign-in: a JWT like the API's tokens
(same key, same issuer) but with `aud: "admin"` and `token_use: "admin_sso"`, so neither kind can stand
in for the other. Verification is shared.auth's: signature, issuer, audience, expiry, staff, then the
revocation list (the user's `ver`, the sign-in `sid`) with the fail-closed policy: when the list cannot
be read, the admins answer 503 rather than let a possibly signed-out member of staff in.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from shared.auth.api import revocation_list, verifier
from shared.auth.tokens import TokenRefused

# Path=/ because it must reach every admin and Flower (one cookie name cannot carry two paths). Nothing
# else honours it: the APIs take Bearer tokens only, so a cookie the browser adds to API calls is inert.
COOKIE_PATH = "/"


class SsoRefused(Exception):
    """The cookie does not let anyone in; the message says why (logged, never shown)."""


@dataclass(frozen=True)
class SsoClaims:
    user_id: str
    email: str
    full_name: str
    is_superuser: bool
    sign_in_id: str
    expires_at: int


def _config() -> dict:
    return settings.ADMIN_SSO


def sso_token_verify(raw: str) -> SsoClaims:
    """The claims of a valid SSO token of a current staff sign-in, else SsoRefused.

    Raises shared.auth.revocation.RevocationUnavailable when the revocation list cannot be read.
    """
    try:
        claims = verifier().admin_sso(raw)
        revocation_list().check(claims, fail_open=False)
    except TokenRefused as exc:
        raise SsoRefused(exc.message) from None
    return SsoClaims(
        user_id=str(claims["user_id"]),
        email=str(claims.get("email", "")),
        full_name=str(claims.get("name", "")),
        is_superuser=claims.get("is_superuser") is True,
        sign_in_id=str(claims["sid"]),
        expires_at=int(claims["exp"]),
    )


def cookie_value(request) -> str:
    return request.COOKIES.get(_config()["COOKIE_NAME"], "")


def set_cookie(response, request, token: str) -> None:
    response.set_cookie(
        _config()["COOKIE_NAME"],
        token,
        max_age=_config()["COOKIE_SECONDS"],
        path=COOKIE_PATH,
        secure=_config()["COOKIE_SECURE"] or request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def delete_cookie(response) -> None:
    response.delete_cookie(_config()["COOKIE_NAME"], path=COOKIE_PATH, samesite="Lax")

"""The SSO cookie's token: issued by identity, verified by every service, revoked on logout.

The token is a JWT like the API's access tokens (same key pair, same issuer) but it cannot stand in for
one, nor one for it: it carries `aud: "admin"` and `token_use: "admin_sso"` and no `token_type`, and
the API's verification refuses any audience while this one requires it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

from shared.auth import revoked_since

logger = logging.getLogger(__name__)

AUDIENCE = "admin"
TOKEN_USE = "admin_sso"  # noqa: S105 (a claim value, not a secret)
COOKIE_PATH = "/admin/"
REVOKED_KEY = "auth:admin-sso-revoked:{jti}"
REQUIRED_CLAIMS = ["exp", "iat", "jti", "iss", "aud", "user_id"]


class SsoRefused(Exception):
    """The cookie does not let anyone in; the message says why (logged, never shown)."""


@dataclass(frozen=True)
class SsoClaims:
    user_id: str
    email: str
    full_name: str
    is_superuser: bool
    jti: str
    expires_at: int


def _config() -> dict:
    return settings.ADMIN_SSO


def _issuer() -> str:
    return settings.SIMPLE_JWT["ISSUER"]


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def sso_token_issue(*, user) -> str:
    """A signed SSO token for a staff `user` of identity (needs identity's private key)."""
    if not (user.is_active and user.is_staff):
        raise SsoRefused("only active staff get an admin SSO token")
    now = int(time.time())
    claims = {
        "iss": _issuer(),
        "aud": AUDIENCE,
        "token_use": TOKEN_USE,
        "iat": now,
        "exp": now + _config()["COOKIE_SECONDS"],
        "jti": uuid.uuid4().hex,
        "user_id": str(user.pk),
        "email": user.email,
        "name": getattr(user, "full_name", ""),
        "is_staff": True,
        "is_superuser": bool(user.is_superuser),
    }
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="RS256")


def _decode(raw: str) -> dict:
    try:
        return jwt.decode(
            raw,
            settings.JWT_PUBLIC_KEY,
            algorithms=["RS256"],  # only identity's key type: no `none`, no HMAC with the public key
            audience=AUDIENCE,
            issuer=_issuer(),
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise SsoRefused(f"invalid token: {exc}") from exc


def _is_revoked(jti: str) -> bool:
    try:
        return bool(_redis().exists(REVOKED_KEY.format(jti=jti)))
    except Exception:  # same policy as shared.auth: a cache outage must not lock every operator out
        logger.warning("admin SSO revocation list unreachable; accepting cookie", exc_info=True)
        return False


def sso_token_verify(raw: str) -> SsoClaims:
    """The claims of a valid SSO token of an active staff member, else SsoRefused."""
    claims = _decode(raw)
    if claims.get("token_use") != TOKEN_USE:
        raise SsoRefused("not an admin SSO token")
    if claims.get("is_staff") is not True:
        raise SsoRefused("not staff")
    user_id = str(claims["user_id"])
    deactivated_at = revoked_since(user_id)
    if deactivated_at is not None and int(claims["iat"]) <= deactivated_at:
        raise SsoRefused("user deactivated since the token was issued")
    if _is_revoked(str(claims["jti"])):
        raise SsoRefused("logged out")
    return SsoClaims(
        user_id=user_id,
        email=str(claims.get("email", "")),
        full_name=str(claims.get("name", "")),
        is_superuser=claims.get("is_superuser") is True,
        jti=str(claims["jti"]),
        expires_at=int(claims["exp"]),
    )


def sso_token_revoke(raw: str) -> None:
    """Logout: this token is refused everywhere until it would have expired anyway."""
    try:
        claims = _decode(raw)
    except SsoRefused:
        return  # nothing valid to revoke
    ttl = int(claims["exp"]) - int(time.time())
    if ttl > 0:
        _redis().set(REVOKED_KEY.format(jti=claims["jti"]), 1, ex=ttl)
        logger.info("admin SSO cookie revoked", extra={"user_id": str(claims["user_id"])})


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

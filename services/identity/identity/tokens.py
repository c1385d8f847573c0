"""The tokens identity signs. Only identity holds the private key; shared.auth.tokens says what makes
each kind valid, and every service checks them with the public key alone.

Built with PyJWT rather than simplejwt's token classes: what identity needs around them (sign-ins with an
absolute lifetime, the `ver`/`sid` revocation claims, refresh-token reuse detection, the admin sign-on
cookie and service tokens) is not what simplejwt models, and PyJWT does the signing either way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

from identity.models import SignIn, User
from shared.auth import tokens as rules

REFRESH_TOKEN_TYPE = "refresh"  # noqa: S105 (a claim value)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _config() -> dict:
    return settings.JWT


def _sign(claims: dict, lifetime_seconds: int, *, expires_at: int | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": _config()["ISSUER"],
        "iat": now,
        "exp": min(now + lifetime_seconds, expires_at or now + lifetime_seconds),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(claims, _config()["SIGNING_KEY"], algorithm="RS256")


def user_claims(user: User, sign_in: SignIn) -> dict:
    """What other services need to authorize the user without asking identity, as of now."""
    return {
        "user_id": str(user.pk),
        "email": user.email,
        "is_staff": user.is_staff,
        "roles": user.roles,
        "ver": user.auth_version,
        "sid": str(sign_in.pk),
    }


def pair_issue(*, user: User, sign_in: SignIn, refresh_jti: str) -> TokenPair:
    """An access token and the sign-in's one valid refresh token (its jti is `refresh_jti`)."""
    claims = user_claims(user, sign_in)
    expires_at = int(sign_in.expires_at.timestamp())
    access = _sign(
        {**claims, "token_type": rules.ACCESS_TOKEN_TYPE},
        int(_config()["ACCESS_LIFETIME"].total_seconds()),
        expires_at=expires_at,
    )
    refresh = _sign(
        {
            "user_id": claims["user_id"],
            "sid": claims["sid"],
            "token_type": REFRESH_TOKEN_TYPE,
            "jti": refresh_jti,
        },
        int(_config()["SIGN_IN_LIFETIME"].total_seconds()),
        expires_at=expires_at,
    )
    return TokenPair(access=access, refresh=refresh)


def refresh_claims(raw: str) -> dict:
    """The claims of a refresh token identity signed and that has not expired (sign-in not checked)."""
    verifier = rules.Verifier(public_key=_config()["PUBLIC_KEY"], issuer=_config()["ISSUER"])
    claims = verifier.decode(raw, audience=None, required=["user_id", "sid", "jti"])
    if claims.get("token_type") != REFRESH_TOKEN_TYPE:
        raise rules.TokenRefused("A refresh token is required.")
    return claims


def admin_sso_issue(*, user: User, sign_in: SignIn) -> str:
    """The admin single sign-on cookie's token (shared.auth.admin_sso verifies it)."""
    claims = user_claims(user, sign_in)
    return _sign(
        {
            **claims,
            "aud": rules.ADMIN_AUDIENCE,
            "token_use": rules.ADMIN_TOKEN_USE,
            "name": user.full_name,
            "is_superuser": bool(user.is_superuser),
        },
        settings.ADMIN_SSO["COOKIE_SECONDS"],
        expires_at=int(sign_in.expires_at.timestamp()),
    )


def service_token_issue(*, client_id: str, scopes: list[str]) -> tuple[str, int]:
    """A service token for `client_id` with `scopes`, and its lifetime in seconds."""
    lifetime = int(_config()["SERVICE_TOKEN_LIFETIME"].total_seconds())
    token = _sign(
        {
            "aud": rules.SERVICE_AUDIENCE,
            "token_type": rules.SERVICE_TOKEN_TYPE,
            "sub": f"service:{client_id}",
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
        },
        lifetime,
    )
    return token, lifetime

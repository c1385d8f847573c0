"""Token verification and permissions for every service.

Deactivating a user must stop their tokens everywhere, not only at identity. identity records the
deactivation time in Redis (`auth:revoked:<user_id>`, kept as long as an access token lives) and every
service refuses tokens issued before it. If Redis cannot be asked, the check fails open: access tokens
live minutes and a cache outage must not log everybody out. The entry is kept on reactivation, so
the tokens issued before a deactivation never come back; tokens are compared at one-second resolution
(`iat` is whole seconds), so only a token minted in the very second of the deactivation is refused too.
"""

from __future__ import annotations

import logging

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.permissions import BasePermission
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

logger = logging.getLogger(__name__)

REVOCATION_KEY = "auth:revoked:{user_id}"


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def revoke_user_tokens(*, user_id: str, at: int, ttl_seconds: int) -> None:
    """Refuse, in every service, the tokens of `user_id` issued at or before `at` (epoch seconds)."""
    _redis().set(REVOCATION_KEY.format(user_id=user_id), at, ex=ttl_seconds)


def revoked_since(user_id: str) -> int | None:
    try:
        value = _redis().get(REVOCATION_KEY.format(user_id=user_id))
    except Exception:  # a cache outage must not refuse every request
        logger.warning("token revocation list unreachable; accepting token", exc_info=True)
        return None
    return int(value) if value is not None else None


class RevocationCheckedJWTAuthentication(JWTStatelessUserAuthentication):
    """Verifies the token locally (signature, expiry, type) and refuses revoked users' tokens."""

    def get_validated_token(self, raw_token):
        token = super().get_validated_token(raw_token)
        revoked_at = revoked_since(str(token.get("user_id")))
        if revoked_at is not None and int(token.get("iat", 0)) <= revoked_at:
            raise AuthenticationFailed("This account has been deactivated.", code="token_revoked")
        return token


class IsStaff(BasePermission):
    """Staff only (the `is_staff` claim, or the user's flag in identity)."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_staff", False))


class RevocationCheckedJWTScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular that every service's API takes identity's Bearer JWT."""

    target_class = RevocationCheckedJWTAuthentication
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256, from identity)"}

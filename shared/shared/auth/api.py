"""DRF authentication and permissions for every service's API, on shared.auth.tokens and .revocation.

- `AccessTokenAuthentication`: a user's access token (`Authorization: Bearer`), verified locally and
  against the revocation list (fail open: see shared.auth.revocation). identity subclasses it to read
  the user's row instead of the list (identity.authentication).
- `ServiceTokenAuthentication` + `HasServiceScope`: the `/internal/` routes, for other services only.
  A user's token is refused there and a service token is refused everywhere else.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from shared.auth.revocation import RevocationList
from shared.auth.tokens import ServiceCaller, TokenRefused, Verifier, roles_of

BEARER = "bearer"


@lru_cache(maxsize=1)
def verifier() -> Verifier:
    return Verifier(public_key=settings.JWT["PUBLIC_KEY"], issuer=settings.JWT["ISSUER"])


@lru_cache(maxsize=1)
def revocation_list() -> RevocationList:
    """This process's reader of the revocation list (short timeouts: docs/security.md)."""
    return RevocationList(settings.REDIS_URL, timeout=settings.AUTH_REVOCATION_TIMEOUT)


def refused(exc: TokenRefused) -> exceptions.APIException:
    """The DRF exception for a refused token, keeping its code for the error body."""
    detail = {"detail": exc.message, "code": exc.code}
    if exc.status == 403:
        return exceptions.PermissionDenied(detail)
    return exceptions.AuthenticationFailed(detail)


def bearer_token(request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None without the header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise exceptions.AuthenticationFailed(
            {"detail": "The Authorization header must be 'Bearer <token>'.", "code": "authentication_failed"}
        )
    return token.strip()


class UserClaims:
    """The caller as its access token describes it: the services but identity keep no user rows."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: dict) -> None:
        self.token = claims
        self.id = self.pk = str(claims["user_id"])
        self.email = str(claims.get("email", ""))
        self.is_staff = claims.get("is_staff") is True
        self.roles = roles_of(claims)

    def __str__(self) -> str:
        return f"user {self.id}"


class AccessTokenAuthentication(BaseAuthentication):
    """A user's access token from identity: signature, issuer, expiry, type, then the revocation list."""

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None:
            return None
        try:
            claims = verifier().access(raw)
            user = self.current_user(claims)
        except TokenRefused as exc:
            raise refused(exc) from None
        return user, claims

    def current_user(self, claims: dict):
        """The caller, once its token is known not to be withdrawn (fail open: shared.auth.revocation)."""
        revocation_list().check(claims, fail_open=True)
        return UserClaims(claims)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ServiceTokenAuthentication(BaseAuthentication):
    """Another service's token (client-credentials grant at identity); nothing else is accepted."""

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None:
            return None
        try:
            caller = verifier().service(raw)
        except TokenRefused as exc:
            raise refused(exc) from None
        return caller, None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="internal"'


class HasServiceScope(BasePermission):
    """The caller is a service whose token grants the view's `required_scope`."""

    message = "A service token with the required scope is needed."

    def has_permission(self, request, view) -> bool:
        caller = request.user
        if not isinstance(caller, ServiceCaller):
            return False
        try:
            caller.require(view.required_scope)
        except TokenRefused as exc:
            raise refused(exc) from None
        return True


class IsStaff(BasePermission):
    """Staff only (the `is_staff` claim of a current token, or the user's flag in identity)."""

    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_staff", False))


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular that every service's API takes identity's Bearer access token."""

    target_class = AccessTokenAuthentication
    match_subclasses = True
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256, from identity)"}


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = ServiceTokenAuthentication
    name = "serviceAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT service token (client credentials)"}

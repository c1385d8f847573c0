"""What makes a token valid, for every service and the gateway's verifier (no Django here).

identity issues three kinds of token, all RS256 with its key and its issuer, and none can stand in for
another:

- access: `token_type: "access"`, no audience; `JWT_ACCESS_MINUTES`; customers and staff on the API;
- admin single sign-on: `aud: "admin"`, `token_use: "admin_sso"`; `ADMIN_SSO_COOKIE_SECONDS`; staff in
  the admins and Flower;
- service: `aud: "platform-services"`, `token_type: "service"`; `SERVICE_TOKEN_SECONDS`; services calling
  other services' `/internal/` routes.

Only RS256 is accepted, so `alg: none` and HS256 signed with the public key fail. A user's tokens carry
the user's `ver` (identity's `auth_version`, raised on every role change and deactivation) and the
sign-in they belong to (`sid`): `shared.auth.revocation` refuses them once either has moved on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jwt

ALGORITHMS = ["RS256"]  # identity's key type only
ADMIN_SSO_COOKIE = "admin_sso"  # the cookie identity's admin login sets (shared.auth.admin_sso)
ADMIN_AUDIENCE = "admin"
# Claim values, not secrets.
ADMIN_TOKEN_USE = "admin_sso"  # noqa: S105
SERVICE_AUDIENCE = "platform-services"
SERVICE_TOKEN_TYPE = "service"  # noqa: S105
ACCESS_TOKEN_TYPE = "access"  # noqa: S105


class TokenRefused(Exception):
    """A token that lets nobody in. `status` 401 (who are you?) or 403 (you may not), `code` for clients."""

    def __init__(self, message: str, *, code: str = "token_not_valid", status: int = 401) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass(frozen=True)
class Verifier:
    """identity's public key and issuer: all a service needs to check a token on its own."""

    public_key: str
    issuer: str

    def decode(self, raw: str, *, audience: str | None, required: list[str]) -> dict:
        try:
            return jwt.decode(
                raw,
                self.public_key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=audience,  # None: a token that names any audience is refused
                options={"require": ["exp", "iat", "iss", *required]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("The token has expired.") from None
        except jwt.PyJWTError:
            raise TokenRefused("The token is invalid.") from None

    def access(self, raw: str) -> dict:
        """The claims of an unexpired access token of a user (not yet checked for revocation)."""
        claims = self.decode(raw, audience=None, required=["user_id", "jti"])
        if claims.get("token_type") != ACCESS_TOKEN_TYPE:
            raise TokenRefused("An access token is required.")
        return claims

    def admin_sso(self, raw: str) -> dict:
        """The claims of an admin single sign-on token of a staff member (not yet checked for revocation)."""
        claims = self.decode(raw, audience=ADMIN_AUDIENCE, required=["user_id", "jti", "sid"])
        if claims.get("token_use") != ADMIN_TOKEN_USE:
            raise TokenRefused("Not an admin sign-on token.")
        if claims.get("is_staff") is not True:
            raise TokenRefused("Only staff may use the admin.", code="permission_denied", status=403)
        return claims

    def service(self, raw: str) -> ServiceCaller:
        """The calling service of a valid service token."""
        claims = self.decode(raw, audience=SERVICE_AUDIENCE, required=["client_id", "jti"])
        if claims.get("token_type") != SERVICE_TOKEN_TYPE:
            raise TokenRefused("A service token is required.")
        return ServiceCaller(
            client_id=str(claims["client_id"]), scopes=frozenset(str(claims.get("scope", "")).split())
        )


@dataclass(frozen=True)
class ServiceCaller:
    """Another service of the platform, as its token describes it."""

    client_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    # What DRF asks of `request.user`: a service is authenticated, and never a member of staff.
    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise TokenRefused(
                f"The service token lacks the scope {scope!r}.", code="insufficient_scope", status=403
            )


def roles_of(claims: dict) -> list[str]:
    """The roles a user token grants ("staff" whenever `is_staff` says so)."""
    roles = [str(role) for role in claims.get("roles") or []]
    if claims.get("is_staff") is True and "staff" not in roles:
        roles.append("staff")
    return roles

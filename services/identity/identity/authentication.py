"""identity's API authentication: the shared access-token rules, with identity's own rows as the
revocation list (it is the authority the others' Redis list is copied from), so a token of a user who
changed, of an ended sign-in or of a deleted account is refused here even while Redis is away.
"""

from __future__ import annotations

from identity.models import SignIn, User
from shared.auth.api import AccessTokenAuthentication
from shared.auth.tokens import TokenRefused


class IdentityAccessAuthentication(AccessTokenAuthentication):
    def current_user(self, claims: dict) -> User:
        user = User.objects.filter(pk=claims["user_id"]).first()
        if user is None or not user.is_active:
            raise TokenRefused("This account is not active.", code="token_revoked")
        if int(claims.get("ver", 0)) < user.auth_version:
            raise TokenRefused(
                "The account's access changed since this token was issued: sign in again.",
                code="token_revoked",
            )
        sign_in = claims.get("sid")
        if sign_in and not SignIn.objects.filter(pk=sign_in, ended_at__isnull=True).exists():
            raise TokenRefused("This sign-in has ended: sign in again.", code="token_revoked")
        return user

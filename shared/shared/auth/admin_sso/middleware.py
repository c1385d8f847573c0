"""Every service but identity: the SSO cookie authenticates each admin request as a shadow staff user."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpResponse

from shared.auth.admin_sso import tokens
from shared.auth.revocation import RevocationUnavailable

logger = logging.getLogger(__name__)


def shadow_user_sync(*, claims: tokens.SsoClaims):
    """The local user standing for identity's staff member `claims.user_id`, created or updated.

    Keyed by identity's user id (the username), so a changed e-mail address still finds the same row
    and its history. Staff always; superuser as identity says; no usable password (SSO only).
    Permissions of non-superusers are given in each service's own admin (groups), never overwritten here.
    """
    User = get_user_model()
    wanted = {
        "email": claims.email,
        "first_name": (claims.full_name or claims.email)[:150],
        "is_staff": True,
        "is_active": True,
        "is_superuser": claims.is_superuser,
    }
    user = User.objects.filter(username=claims.user_id).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User(username=claims.user_id, **wanted)
                user.set_unusable_password()
                user.save()
                logger.info("admin SSO shadow user created", extra={"user_id": claims.user_id})
                return user
        except IntegrityError:  # a concurrent first request created it
            user = User.objects.get(username=claims.user_id)
    changed = [field for field, value in wanted.items() if getattr(user, field) != value]
    if changed:
        for field in changed:
            setattr(user, field, wanted[field])
        user.save(update_fields=changed)
    return user


class AdminSsoMiddleware:
    """On this service's admin pages, a valid SSO cookie makes `request.user` the shadow staff user.

    Stateless on purpose: the cookie is checked on every request and never turned into a local
    session, so logout at identity, expiry and deactivation end access here at once. Without a valid
    cookie the request goes on as it came (anonymous, or a local `?local=1` login), and the admin sends
    anonymous visitors to identity's login. Goes right after AuthenticationMiddleware; not in identity,
    which issues the cookie and keeps its own sessions (shared.settings leaves it out there).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = f"/{settings.ADMIN_URL_PATH}"

    def __call__(self, request):
        raw = tokens.cookie_value(request)
        if raw and request.path_info.startswith(self.prefix):
            try:
                self._authenticate(request, raw)
            except RevocationUnavailable:
                # Fail closed (docs/security.md): staff rights are not handed out unchecked.
                logger.warning("admin SSO cookie not checked: revocation list unreachable")
                return _sign_in_unavailable()
        return self.get_response(request)

    def _authenticate(self, request, raw: str) -> None:
        try:
            claims = tokens.sso_token_verify(raw)
        except tokens.SsoRefused as exc:
            logger.warning("admin SSO cookie refused", extra={"reason": str(exc), "path": request.path_info})
            return
        user = shadow_user_sync(claims=claims)
        request.user = user
        request._cached_user = user


def _sign_in_unavailable() -> HttpResponse:
    response = HttpResponse(
        "Sign-in cannot be checked right now (the revocation list is unreachable). Try again shortly.",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response

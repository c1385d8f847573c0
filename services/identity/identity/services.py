"""identity's writes. Views, admin actions and commands call these; nothing else changes users."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from identity.models import User
from shared.auth import revoke_user_tokens
from shared.errors import DomainError
from shared.messaging.events import publish_event

logger = logging.getLogger(__name__)


class EmailTaken(DomainError):
    code = "validation_error"


def _email_taken() -> EmailTaken:
    return EmailTaken(
        "The request has invalid fields.", fields={"email": "An account with this e-mail already exists."}
    )


def user_register(*, email: str, password: str, full_name: str, is_staff: bool = False) -> User:
    """Create an account (validated like any password change) and announce `user.registered`."""
    email = User.objects.normalize_email(email).lower()
    candidate = User(email=email, full_name=full_name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise DomainError(
            "The request has invalid fields.", code="validation_error", fields={"password": exc.messages}
        ) from exc
    if User.objects.filter(email__iexact=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, full_name=full_name, is_staff=is_staff, is_superuser=is_staff
            )
            publish_event(
                "user.registered",
                {
                    "user_id": str(user.id),
                    "email": user.email,
                    "full_name": user.full_name,
                    "roles": user.roles,
                },
            )
    except IntegrityError as exc:  # a concurrent registration won the race for this e-mail
        raise _email_taken() from exc
    logger.info("user registered", extra={"user_id": str(user.id)})
    return user


def user_update(*, user: User, is_active: bool | None = None, full_name: str | None = None) -> User:
    """Staff edits. Deactivation takes effect at once: every token of the user stops working."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if full_name is not None:
            user.full_name = full_name
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            user.deactivated_at = None if is_active else timezone.now()
            if not is_active:
                _blacklist_refresh_tokens(user)
                transaction.on_commit(lambda: _revoke_access_tokens(user))
        user.save()
    return user


def _blacklist_refresh_tokens(user: User) -> None:
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in outstanding])


def _revoke_access_tokens(user: User) -> None:
    """Access tokens are verified without identity; the shared revocation list stops them everywhere."""
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    revoke_user_tokens(
        user_id=str(user.pk), at=int(time.time()), ttl_seconds=int(lifetime.total_seconds()) + 60
    )
    logger.info("user deactivated; tokens revoked", extra={"user_id": str(user.pk)})


def token_revoke(*, refresh: str) -> None:
    """Logout: the refresh token (and so every access token it could mint) is blacklisted."""
    RefreshToken(refresh).blacklist()

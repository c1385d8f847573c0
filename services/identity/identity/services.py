"""identity's writes. Views, admin actions and commands call these; nothing else changes users."""

from __future__ import annotations

import hmac
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis import RedisError

from identity import tokens
from identity.emails import normalize_email
from identity.models import SignIn, User
from shared.auth.api import revocation_list
from shared.auth.tokens import TokenRefused
from shared.messaging.events import publish_event
from shared.web.errors import DomainError, Forbidden

logger = logging.getLogger(__name__)


class EmailTaken(DomainError):
    code = "validation_error"


def _email_taken() -> EmailTaken:
    return EmailTaken(
        "The request has invalid fields.", fields={"email": "An account with this e-mail already exists."}
    )


def user_register(*, email: str, password: str, full_name: str, is_staff: bool = False) -> User:
    """Create an account (validated like any password change) and announce `user.registered`."""
    try:
        email = normalize_email(email)  # the one stored form (identity.emails): compared exactly below
    except DjangoValidationError as exc:
        raise DomainError(
            "The request has invalid fields.", code="validation_error", fields={"email": exc.messages}
        ) from exc
    candidate = User(email=email, full_name=full_name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise DomainError(
            "The request has invalid fields.", code="validation_error", fields={"password": exc.messages}
        ) from exc
    if User.objects.filter(email=email).exists():
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


# --- changing a user: every path (API, admin, shell) goes through these ------------------------------

ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser")


def user_update(
    *,
    user: User,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
    full_name: str | None = None,
    actor_id: str | None = None,
) -> User:
    """Change a user. A change of access (active, staff, superuser) withdraws every token already issued
    at once, in every service: the user's `auth_version` goes up, and a deactivation also ends every
    sign-in. The user's next refresh (or sign-in) gets tokens that say what is true now.

    Raises Forbidden(own_access) when `actor_id` (the member of staff asking) would take their own access
    away: nobody locks themselves (or the last administrator) out by mistake; another member of staff can."""
    wanted = {"is_active": is_active, "is_staff": is_staff, "is_superuser": is_superuser}
    if actor_id is not None and str(actor_id) == str(user.pk) and False in wanted.values():
        raise Forbidden("You cannot deactivate or demote your own account.", code="own_access")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if full_name is not None:
            user.full_name = full_name
        changed = [
            field for field, value in wanted.items() if value is not None and getattr(user, field) != value
        ]
        for field in changed:
            setattr(user, field, wanted[field])
        if "is_active" in changed:
            user.deactivated_at = None if user.is_active else timezone.now()
        if changed:
            _withdraw_tokens(user, end_sign_ins=not user.is_active)
        user.save()
    if changed:
        logger.info(
            "user access changed; tokens withdrawn", extra={"user_id": str(user.pk), "fields": changed}
        )
    return user


def user_set_password(*, user: User, password: str) -> User:
    """A new password (validated like at registration) signs the user out everywhere."""
    _validate_password(password, user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(password)
        _withdraw_tokens(user, end_sign_ins=True)
        user.save()
    logger.info("password changed; every sign-in ended", extra={"user_id": str(user.pk)})
    return user


def _validate_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise DomainError(
            "The request has invalid fields.", code="validation_error", fields={"password": exc.messages}
        ) from exc


def _withdraw_tokens(user: User, *, end_sign_ins: bool) -> None:
    """Inside the user's transaction: a new auth_version (older tokens refused), and optionally every
    open sign-in ended; the revocation list learns both once the transaction commits."""
    user.auth_version += 1
    user.auth_changed_at = timezone.now()
    ended = (
        _sign_ins_end(SignIn.objects.filter(user=user), SignIn.EndReason.ACCOUNT_CHANGED)
        if end_sign_ins
        else []
    )
    user_id, version = str(user.pk), user.auth_version
    transaction.on_commit(lambda: _publish(versions={user_id: version}, ended_sign_ins=ended))


# --- sign-ins and their tokens --------------------------------------------------------------------------


def sign_in_start(*, user: User, kind: str) -> SignIn:
    lifetime = settings.JWT["ADMIN_SIGN_IN_LIFETIME" if kind == SignIn.Kind.ADMIN else "SIGN_IN_LIFETIME"]
    now = timezone.now()
    return SignIn.objects.create(user=user, kind=kind, created_at=now, expires_at=now + lifetime)


def api_sign_in(*, user: User) -> tokens.TokenPair:
    """Tokens for a user whose password was just checked: a new API sign-in."""
    with transaction.atomic():
        sign_in = sign_in_start(user=user, kind=SignIn.Kind.API)
        pair = _rotate(sign_in, user)
        update_last_login(None, user)
    return pair


def tokens_refresh(*, refresh: str) -> tokens.TokenPair:
    """A new access token and the sign-in's next refresh token, with claims read from the user now.

    Refused (TokenRefused) when the token is not a live refresh token of an open sign-in of an active
    user. A refresh token that was already rotated away is a copy: the whole sign-in ends (OAuth 2.0
    Security BCP, refresh token rotation), so a thief and the owner both have to sign in again.
    """
    claims = tokens.refresh_claims(refresh)
    with transaction.atomic():
        sign_in = SignIn.objects.select_for_update().select_related("user").filter(pk=claims["sid"]).first()
        refusal = _refresh_refusal(sign_in, claims)
        if refusal is None:
            return _rotate(sign_in, sign_in.user)
        if refusal.code == "token_reused":
            ended = _sign_ins_end(SignIn.objects.filter(pk=sign_in.pk), SignIn.EndReason.REFRESH_REUSE)
            transaction.on_commit(lambda: _publish(ended_sign_ins=ended))
            logger.warning("refresh token reused; sign-in ended", extra={"user_id": str(sign_in.user_id)})
    raise refusal  # outside the transaction, which keeps the ended sign-in


def _refresh_refusal(sign_in: SignIn | None, claims: dict) -> TokenRefused | None:
    if sign_in is None or str(sign_in.user_id) != str(claims["user_id"]):
        return TokenRefused("This sign-in does not exist.")
    if sign_in.ended_at is not None:
        return TokenRefused("This sign-in has ended: sign in again.", code="token_revoked")
    if sign_in.refresh_jti != claims["jti"]:
        return TokenRefused("This refresh token was already used: sign in again.", code="token_reused")
    if not sign_in.user.is_active:
        return TokenRefused("This account is not active.", code="token_revoked")
    return None


def _rotate(sign_in: SignIn, user: User) -> tokens.TokenPair:
    sign_in.refresh_jti = uuid.uuid4().hex
    sign_in.refreshed_at = timezone.now()
    sign_in.save(update_fields=["refresh_jti", "refreshed_at"])
    return tokens.pair_issue(user=user, sign_in=sign_in, refresh_jti=sign_in.refresh_jti)


def logout(*, refresh: str) -> None:
    """End the sign-in the refresh token belongs to: it and every access token minted for it stop."""
    claims = tokens.refresh_claims(refresh)
    sign_in_end(sign_in_id=claims["sid"], reason=SignIn.EndReason.LOGOUT)


def sign_in_end(*, sign_in_id: str, reason: str) -> bool:
    """End one sign-in (idempotent); False if it had already ended or does not exist."""
    with transaction.atomic():
        ended = _sign_ins_end(SignIn.objects.filter(pk=sign_in_id), reason)
        transaction.on_commit(lambda: _publish(ended_sign_ins=ended))
    return bool(ended)


def _sign_ins_end(sign_ins, reason: str) -> list[str]:
    open_ids = [str(pk) for pk in sign_ins.filter(ended_at__isnull=True).values_list("pk", flat=True)]
    SignIn.objects.filter(pk__in=open_ids).update(ended_at=timezone.now(), end_reason=reason)
    return open_ids


def admin_sign_in(*, user: User, sign_in_id: str | None) -> tuple[SignIn, str]:
    """The admin sign-in of a staff member who passed identity's admin login (the open one named by
    `sign_in_id` when there is one, else a new one) and a fresh single sign-on cookie token for it."""
    sign_in = (
        SignIn.objects.filter(pk=sign_in_id, user=user, kind=SignIn.Kind.ADMIN).first()
        if sign_in_id
        else None
    )
    if sign_in is None or not sign_in.is_open:
        sign_in = sign_in_start(user=user, kind=SignIn.Kind.ADMIN)
    return sign_in, tokens.admin_sso_issue(user=user, sign_in=sign_in)


# --- the revocation list other services read -----------------------------------------------------------


def _revocation_window() -> timedelta:
    """How long a revocation entry must live: as long as the longest-lived token it could refuse."""
    cookie = timedelta(seconds=settings.ADMIN_SSO["COOKIE_SECONDS"])
    return max(settings.JWT["ACCESS_LIFETIME"], cookie) + timedelta(seconds=60)


def _publish(*, versions: dict[str, int] | None = None, ended_sign_ins: list[str] | None = None) -> None:
    """Copy revocations to Redis now. If Redis does not take them, `revocations_publish` (beat) will."""
    ttl = int(_revocation_window().total_seconds())
    store = revocation_list()
    try:
        for user_id, version in (versions or {}).items():
            store.publish_user_version(user_id=user_id, version=version, ttl_seconds=ttl)
        if ended_sign_ins:
            store.publish_sign_ins_ended(ended_sign_ins, ttl_seconds=ttl)
    except RedisError:
        logger.warning("revocations not published now; the periodic sweep will retry", exc_info=True)


def revocations_publish() -> int:
    """Beat: publish every revocation still inside its window (idempotent), so none is lost to a Redis
    outage at the moment it was made. Returns how many entries were written."""
    now = timezone.now()
    window = _revocation_window()
    store = revocation_list()
    users = User.objects.filter(auth_changed_at__gt=now - window).values_list(
        "pk", "auth_version", "auth_changed_at"
    )
    for user_id, version, changed_at in users:
        ttl = int((changed_at + window - now).total_seconds())
        store.publish_user_version(user_id=str(user_id), version=version, ttl_seconds=ttl)
    ended = SignIn.objects.filter(ended_at__gt=now - window).values_list("pk", "ended_at")
    for sign_in_id, ended_at in ended:
        store.publish_sign_ins_ended(
            [str(sign_in_id)], ttl_seconds=int((ended_at + window - now).total_seconds())
        )
    return len(users) + len(ended)


# --- services of the platform: the client-credentials grant ---------------------------------------------


def service_token_grant(*, client_id: str, client_secret: str, scope: str = "") -> tuple[str, int, list[str]]:
    """A short-lived service token for a registered client (settings.SERVICE_CLIENTS) whose secret
    matches, with the requested scopes (all of its scopes when none is asked). Raises TokenRefused."""
    client = settings.SERVICE_CLIENTS.get(client_id)
    if client is None or not client["secret"] or not hmac.compare_digest(client["secret"], client_secret):
        logger.warning("service client refused", extra={"client_id": client_id[:64]})
        raise TokenRefused("Unknown client or wrong secret.", code="invalid_client")
    allowed = set(client["scopes"])
    requested = set(scope.split()) or allowed
    if not requested <= allowed:
        raise TokenRefused(
            f"Scopes not granted to {client_id}: {' '.join(sorted(requested - allowed))}.",
            code="invalid_scope",
            status=403,
        )
    token, lifetime = tokens.service_token_issue(client_id=client_id, scopes=sorted(requested))
    return token, lifetime, sorted(requested)

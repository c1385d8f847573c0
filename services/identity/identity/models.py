"""Users: e-mail login, a UUID other services know them by, staff or customer."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from identity.emails import normalize_email


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str) -> User:
        """Sign-in's lookup: the typed address in its one form (identity.emails), matched exactly, so
        every address that registered signs in as it is typed. One without a form is unknown."""
        try:
            email = normalize_email(username)
        except ValidationError:
            raise self.model.DoesNotExist from None
        return self.get(email=email)

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Staff may use the admin and see every customer's data."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Raised whenever the tokens already issued must stop working: a role change, a deactivation, a new
    # password. Every token carries the version it was issued under (`ver`); older ones are refused.
    auth_version = models.PositiveIntegerField(default=1, editable=False)
    auth_changed_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["date_joined"]
        constraints = [models.UniqueConstraint(Lower("email"), name="identity_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        """Forms (the admin's) store the address in its one form too, or say why it has none."""
        super().clean()
        try:
            self.email = normalize_email(self.email)
        except ValidationError as exc:
            raise ValidationError({"email": exc.messages}) from exc

    @property
    def roles(self) -> list[str]:
        return ["staff"] if self.is_staff else ["customer"]


class SignIn(models.Model):
    """One sign-in of a user: an API login's chain of refresh tokens, or an admin single sign-on session.

    Every token minted for it carries its id (`sid`), so ending it (logout, refresh-token reuse,
    deactivation) withdraws all of them at once. It lasts at most until `expires_at`, however often its
    refresh token is rotated. For API sign-ins, only the refresh token with `refresh_jti` is valid:
    presenting an older one means it was copied, and ends the sign-in.
    """

    class Kind(models.TextChoices):
        API = "api"
        ADMIN = "admin"

    class EndReason(models.TextChoices):
        LOGOUT = "logout"
        REFRESH_REUSE = "refresh_reuse"
        ACCOUNT_CHANGED = "account_changed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sign_ins")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    refresh_jti = models.CharField(max_length=64, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user"], condition=models.Q(ended_at__isnull=True), name="sign_in_open_idx")
        ]

    def __str__(self) -> str:
        return f"{self.kind} sign-in of {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None and self.expires_at > timezone.now()

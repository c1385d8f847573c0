"""identity's service functions, selectors and the seed command, called directly."""

from __future__ import annotations

import time
from io import StringIO
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from identity import selectors, services
from identity.models import User
from identity.tests.helpers import PASSWORD
from shared.auth import REVOCATION_KEY, _redis, revoked_since
from shared.errors import DomainError
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def register(email="ada@example.com", full_name="Ada Lovelace", **kwargs) -> User:
    return services.user_register(email=email, password=PASSWORD, full_name=full_name, **kwargs)


# user_register


def test_user_register_creates_a_customer_with_a_normalized_email():
    user = register(email="Ada@EXAMPLE.com")

    user.refresh_from_db()
    assert user.email == "ada@example.com"
    assert user.check_password(PASSWORD)
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.roles == ["customer"]


def test_user_register_of_staff_grants_the_admin():
    user = register(is_staff=True)

    assert (user.is_staff, user.is_superuser) == (True, True)
    assert user.roles == ["staff"]


def test_user_register_records_the_event_with_the_users_data():
    user = register()

    event = OutboxEvent.objects.get()
    assert event.event_type == "user.registered"
    assert event.envelope["source"] == "identity"
    assert event.envelope["data"] == {
        "user_id": str(user.id),
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "roles": ["customer"],
    }


def test_user_register_outside_a_request_correlates_the_event_with_itself():
    register()

    envelope = OutboxEvent.objects.get().envelope
    assert envelope["correlation_id"] == envelope["id"]
    assert envelope["causation_id"] is None


def test_user_register_writes_nothing_if_the_event_cannot_be_recorded(monkeypatch):
    def broken_publish(*args, **kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "publish_event", broken_publish)

    with pytest.raises(RuntimeError):
        register()
    assert User.objects.count() == 0


def test_user_register_refuses_a_taken_email_in_another_case():
    register(email="ada@example.com")

    with pytest.raises(services.EmailTaken) as refused:
        register(email="ADA@Example.com", full_name="Impostor")

    assert refused.value.code == "validation_error"
    assert set(refused.value.fields) == {"email"}
    assert User.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


def test_user_register_losing_a_race_for_the_email_is_email_taken(monkeypatch):
    register(email="ada@example.com")
    # The other registration committed between this one's check and its insert.
    with monkeypatch.context() as patch, pytest.raises(services.EmailTaken):
        patch.setattr(User.objects, "filter", lambda **lookup: SimpleNamespace(exists=lambda: False))
        register(email="Ada@example.com")

    assert User.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize("password", ["123", "password", "ada@example.com"])
def test_user_register_refuses_a_weak_password(password):
    with pytest.raises(DomainError) as refused:
        services.user_register(email="ada@example.com", password=password, full_name="Ada")

    assert refused.value.code == "validation_error"
    assert set(refused.value.fields) == {"password"}
    assert User.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


# user_update


def test_user_update_renames():
    user = register()

    services.user_update(user=user, full_name="Countess of Lovelace")

    user.refresh_from_db()
    assert user.full_name == "Countess of Lovelace"
    assert user.is_active is True


def test_user_update_deactivation_marks_the_user_and_blacklists_refresh_tokens():
    user = register()
    tokens = [RefreshToken.for_user(user), RefreshToken.for_user(user)]

    services.user_update(user=user, is_active=False)

    user.refresh_from_db()
    assert user.is_active is False
    assert user.deactivated_at is not None
    blacklisted = set(BlacklistedToken.objects.filter(token__user=user).values_list("token__jti", flat=True))
    assert blacklisted == {token["jti"] for token in tokens}


def test_user_update_revokes_access_tokens_only_after_commit(
    revoked_user_ids, django_capture_on_commit_callbacks
):
    user = register()

    with django_capture_on_commit_callbacks() as callbacks:
        services.user_update(user=user, is_active=False)
    assert revoked_user_ids == []
    assert revoked_since(str(user.id)) is None

    before = int(time.time())
    for callback in callbacks:
        callback()
    assert revoked_user_ids == [str(user.id)]
    assert before <= revoked_since(str(user.id)) <= int(time.time())


def test_the_revocation_lasts_as_long_as_an_access_token(django_capture_on_commit_callbacks):
    user = register()

    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(user=user, is_active=False)

    ttl = _redis().ttl(REVOCATION_KEY.format(user_id=user.id))
    lifetime = int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    assert lifetime < ttl <= lifetime + 60


def test_user_update_of_an_already_inactive_user_revokes_nothing_new(
    revoked_user_ids, django_capture_on_commit_callbacks
):
    user = register()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(user=user, is_active=False)
    deactivated_at = User.objects.get(pk=user.pk).deactivated_at

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.user_update(user=user, is_active=False)

    assert callbacks == []
    assert revoked_user_ids == [str(user.id)]
    assert User.objects.get(pk=user.pk).deactivated_at == deactivated_at


def test_user_update_reactivation_clears_the_deactivation_time():
    user = register()
    services.user_update(user=user, is_active=False)

    services.user_update(user=user, is_active=True)

    user.refresh_from_db()
    assert user.is_active is True
    assert user.deactivated_at is None


# token_revoke


def test_token_revoke_blacklists_the_refresh_token():
    token = RefreshToken.for_user(register())

    services.token_revoke(refresh=str(token))

    assert BlacklistedToken.objects.filter(token__jti=token["jti"]).exists()


def test_token_revoke_of_garbage_raises_token_error():
    with pytest.raises(TokenError):
        services.token_revoke(refresh="garbage")


# selectors


def test_user_list_searches_email_and_name_case_insensitively():
    ada = register(email="ada@example.com", full_name="Ada Lovelace")
    grace = register(email="grace@navy.example", full_name="Grace Hopper")

    assert list(selectors.user_list(search="NAVY")) == [grace]
    assert list(selectors.user_list(search="lovelace")) == [ada]
    assert list(selectors.user_list(search="example")) == [ada, grace]


def test_user_list_filters_on_is_active_and_keeps_registration_order():
    ada = register(email="ada@example.com")
    grace = register(email="grace@example.com")
    alan = register(email="alan@example.com")
    services.user_update(user=grace, is_active=False)

    assert list(selectors.user_list()) == [ada, grace, alan]
    assert list(selectors.user_list(is_active=True)) == [ada, alan]
    assert list(selectors.user_list(is_active=False)) == [grace]


# seed command


def seed() -> str:
    out = StringIO()
    call_command("seed", stdout=out)
    return out.getvalue()


@pytest.fixture
def default_demo_logins(monkeypatch):
    for name in ("DEMO_STAFF_EMAIL", "DEMO_STAFF_PASSWORD", "DEMO_CUSTOMER_EMAIL", "DEMO_CUSTOMER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_seed_creates_one_staff_and_one_customer(default_demo_logins):
    seed()

    assert User.objects.count() == 2
    staff = User.objects.get(email="staff@example.com")
    customer = User.objects.get(email="customer@example.com")
    assert (staff.is_staff, customer.is_staff) == (True, False)
    assert staff.check_password("staff-demo-pass-1")
    assert customer.check_password("customer-demo-pass-1")


def test_seed_twice_is_idempotent(default_demo_logins):
    seed()

    output = seed()

    assert User.objects.count() == 2
    assert User.objects.filter(is_staff=True).count() == 1
    assert OutboxEvent.objects.filter(event_type="user.registered").count() == 2
    assert "staff@example.com exists" in output
    assert "customer@example.com exists" in output


def test_seed_takes_the_logins_from_the_environment(monkeypatch, default_demo_logins):
    monkeypatch.setenv("DEMO_STAFF_EMAIL", "boss@shop.example")
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", "a-long-boss-pass-7")

    seed()

    boss = User.objects.get(email="boss@shop.example")
    assert boss.is_staff is True
    assert boss.check_password("a-long-boss-pass-7")

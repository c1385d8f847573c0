"""identity's service functions, selectors and the seed command, called directly."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command

from identity import selectors, services
from identity.models import SignIn, User
from identity.tests.helpers import PASSWORD
from shared.auth.api import revocation_list
from shared.messaging.models import OutboxEvent
from shared.web.errors import DomainError

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


def test_user_update_deactivation_marks_the_user_and_ends_every_open_sign_in():
    user = register()
    open_ones = [
        services.sign_in_start(user=user, kind="api"),
        services.sign_in_start(user=user, kind="admin"),
    ]

    services.user_update(user=user, is_active=False)

    user.refresh_from_db()
    assert (user.is_active, user.auth_version) == (False, 2)
    assert user.deactivated_at is not None
    ended = SignIn.objects.filter(pk__in=[s.pk for s in open_ones]).values_list("end_reason", flat=True)
    assert list(ended) == ["account_changed", "account_changed"]


def test_user_update_publishes_revocations_only_after_commit(published, django_capture_on_commit_callbacks):
    user = register()
    sign_in = services.sign_in_start(user=user, kind="api")

    with django_capture_on_commit_callbacks() as callbacks:
        services.user_update(user=user, is_active=False)
    assert published == []

    for callback in callbacks:
        callback()
    assert published == [f"auth:user-version:{user.id}", f"auth:sign-in-ended:{sign_in.pk}"]
    assert revocation_list().redis.get(f"auth:user-version:{user.id}") == b"2"


@pytest.mark.parametrize("change", [{"is_staff": True}, {"is_superuser": True}, {"is_active": False}])
def test_every_change_of_access_raises_the_version(change):
    user = register()

    services.user_update(user=user, **change)

    assert User.objects.get(pk=user.pk).auth_version == 2


def test_user_update_without_a_real_change_withdraws_nothing(published, django_capture_on_commit_callbacks):
    user = register()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(user=user, is_active=False)
    before = User.objects.get(pk=user.pk)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.user_update(user=user, is_active=False, is_staff=False)

    assert callbacks == []
    after = User.objects.get(pk=user.pk)
    assert (after.auth_version, after.deactivated_at) == (before.auth_version, before.deactivated_at)


def test_user_update_reactivation_clears_the_deactivation_time():
    user = register()
    services.user_update(user=user, is_active=False)

    services.user_update(user=user, is_active=True)

    user.refresh_from_db()
    assert user.is_active is True
    assert user.deactivated_at is None
    assert user.auth_version == 3  # reactivation is a change of access too: nothing older comes back


def test_user_set_password_validates_and_ends_every_sign_in():
    user = register()
    sign_in = services.sign_in_start(user=user, kind="api")
    with pytest.raises(DomainError):
        services.user_set_password(user=user, password="123")

    services.user_set_password(user=user, password="another-" + PASSWORD)

    user.refresh_from_db()
    assert user.check_password("another-" + PASSWORD)
    assert SignIn.objects.get(pk=sign_in.pk).ended_at is not None


# sign-ins


def test_an_admin_sign_in_is_reused_while_open_and_replaced_once_ended():
    staff = register(email="ops@example.com", is_staff=True)

    first, cookie = services.admin_sign_in(user=staff, sign_in_id=None)
    again, another_cookie = services.admin_sign_in(user=staff, sign_in_id=str(first.pk))
    services.sign_in_end(sign_in_id=str(first.pk), reason="logout")
    replaced, _ = services.admin_sign_in(user=staff, sign_in_id=str(first.pk))

    assert again.pk == first.pk and cookie != another_cookie
    assert replaced.pk != first.pk
    assert first.expires_at - first.created_at == settings.JWT["ADMIN_SIGN_IN_LIFETIME"]


def test_sign_in_end_is_idempotent():
    sign_in = services.sign_in_start(user=register(), kind="api")

    assert services.sign_in_end(sign_in_id=str(sign_in.pk), reason="logout") is True
    assert services.sign_in_end(sign_in_id=str(sign_in.pk), reason="logout") is False


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

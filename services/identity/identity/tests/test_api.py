"""identity's REST surface: registration, login, me, the staff user endpoints, admin, health, errors."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from identity import services
from identity.models import SignIn, User
from identity.tests.helpers import PASSWORD, TOKEN_URL, assert_error
from shared.messaging.models import OutboxEvent

REGISTER_URL = "/api/v1/auth/register/"
ME_URL = "/api/v1/auth/me/"
USERS_URL = "/api/v1/users/"

pytestmark = pytest.mark.django_db


def register(client, **overrides):
    payload = {"email": "Ada.Lovelace@Example.COM", "password": PASSWORD, "full_name": "Ada Lovelace"}
    payload.update(overrides)
    return client.post(REGISTER_URL, payload, format="json")


def user_url(user_id) -> str:
    return f"{USERS_URL}{user_id}/"


# Registration


def test_register_returns_201_with_the_public_user_fields(api_client):
    response = register(api_client)

    assert response.status_code == 201
    body = response.json()
    user = User.objects.get()
    assert body == {
        "id": str(user.id),
        "email": "ada.lovelace@example.com",
        "full_name": "Ada Lovelace",
        "is_staff": False,
        "is_active": True,
        "roles": ["customer"],
        "date_joined": body["date_joined"],
    }
    datetime.fromisoformat(body["date_joined"])


def test_register_never_returns_the_password(api_client):
    response = register(api_client)

    assert "password" not in response.json()
    assert PASSWORD not in response.content.decode()


def test_register_stores_the_email_lower_case_and_hashes_the_password(api_client):
    register(api_client)

    user = User.objects.get()
    assert user.email == "ada.lovelace@example.com"
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)


def test_register_writes_a_user_registered_event_in_the_envelope(api_client):
    response = api_client.post(
        REGISTER_URL,
        {"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada"},
        format="json",
        headers={"X-Request-ID": "req-register-1"},
    )

    event = OutboxEvent.objects.get()
    envelope = event.envelope
    assert set(envelope) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "source",
        "correlation_id",
        "causation_id",
        "data",
    }
    assert event.event_type == envelope["type"] == "user.registered"
    assert envelope["id"] == str(event.id)
    assert envelope["version"] == 1
    assert envelope["source"] == "identity"
    assert envelope["correlation_id"] == "req-register-1"
    assert envelope["causation_id"] is None
    assert envelope["data"]["user_id"] == response.json()["id"]
    assert envelope["data"]["email"] == "ada@example.com"
    assert datetime.fromisoformat(envelope["occurred_at"]).tzinfo is not None
    assert event.published_at is None  # the relay publishes it after commit


def test_register_hands_the_event_to_the_relay_only_after_commit(
    api_client, relayed_event_ids, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        register(api_client)
        assert relayed_event_ids == []

    for callback in callbacks:
        callback()
    assert relayed_event_ids == [str(OutboxEvent.objects.get().id)]


@pytest.mark.parametrize("email", ["ada.lovelace@example.com", "ADA.LOVELACE@example.com"])
def test_register_with_a_taken_email_is_a_validation_error(api_client, email):
    register(api_client)

    response = register(api_client, email=email, full_name="Someone Else")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"email"}
    assert User.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "123"),
        ("ada@example.com", "password"),
        ("ada@example.com", "98765432109"),
        ("rosalind.franklin@example.com", "rosalind.franklin"),
    ],
    ids=["short-numeric", "common", "all-numeric", "similar-to-email"],
)
def test_register_with_a_weak_password_is_refused_and_writes_nothing(api_client, email, password):
    response = register(api_client, email=email, password=password)

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"password"}
    assert User.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_register_without_fields_names_every_missing_field(api_client):
    response = api_client.post(REGISTER_URL, {}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"email", "password", "full_name"}
    assert User.objects.count() == 0


def test_register_with_wrong_types_names_every_bad_field(api_client):
    response = api_client.post(
        REGISTER_URL, {"email": 5, "password": ["x"], "full_name": {"first": "Ada"}}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"email", "password", "full_name"}
    assert User.objects.count() == 0


def test_register_with_an_invalid_email_names_the_field(api_client):
    response = register(api_client, email="not-an-address")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"email"}


def test_register_with_malformed_json_is_a_malformed_request(api_client):
    response = api_client.post(REGISTER_URL, data='{"email": ', content_type="application/json")

    assert_error(response, 400, "malformed_request")
    assert User.objects.count() == 0


def test_register_with_a_non_json_body_is_415(api_client):
    response = api_client.post(
        REGISTER_URL, data="email=ada%40example.com", content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, 415, "unsupported_media_type")
    assert User.objects.count() == 0


def test_register_with_get_is_405_in_the_error_shape(api_client):
    assert_error(api_client.get(REGISTER_URL), 405, "method_not_allowed")


# Login


def test_login_returns_an_access_and_a_refresh_token(api_client, customer):
    response = api_client.post(TOKEN_URL, {"email": customer.email, "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["access"] != body["refresh"]


def test_login_accepts_the_email_in_any_case(api_client, customer):
    response = api_client.post(TOKEN_URL, {"email": "Carla@EXAMPLE.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200


def test_login_with_a_wrong_password_is_401(api_client, customer):
    response = api_client.post(
        TOKEN_URL, {"email": customer.email, "password": "wrong-pass-99"}, format="json"
    )

    assert_error(response, 401, "authentication_failed")
    assert "access" not in response.json()


def test_login_with_an_unknown_email_answers_like_a_wrong_password(api_client, customer):
    wrong_password = api_client.post(
        TOKEN_URL, {"email": customer.email, "password": "nope-nope-1"}, format="json"
    )
    unknown = api_client.post(TOKEN_URL, {"email": "ghost@example.com", "password": PASSWORD}, format="json")

    assert_error(unknown, 401, "authentication_failed")
    assert unknown.json() == wrong_password.json()


def test_login_of_an_inactive_user_is_401(api_client, customer):
    services.user_update(user=customer, is_active=False)

    response = api_client.post(TOKEN_URL, {"email": customer.email, "password": PASSWORD}, format="json")

    assert_error(response, 401, "authentication_failed")


def test_login_without_fields_is_a_validation_error(api_client):
    error = assert_error(api_client.post(TOKEN_URL, {}, format="json"), 400, "validation_error")

    assert set(error["fields"]) == {"email", "password"}


# Me


def test_me_returns_the_callers_own_data(customer_client, customer, staff):
    response = customer_client.get(ME_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(customer.id)
    assert body["email"] == "carla@example.com"
    assert body["roles"] == ["customer"]
    assert "password" not in body


def test_me_without_a_token_is_not_authenticated(api_client):
    assert_error(api_client.get(ME_URL), 401, "not_authenticated")


# Staff: list and edit users


def test_user_list_is_403_for_a_customer(customer_client):
    assert_error(customer_client.get(USERS_URL), 403, "permission_denied")


def test_user_list_is_401_anonymous(api_client):
    assert_error(api_client.get(USERS_URL), 401, "not_authenticated")


def test_user_list_is_paginated_for_staff(staff_client, staff, customer):
    response = staff_client.get(USERS_URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert {user["email"] for user in body["results"]} == {customer.email, staff.email}


def test_user_list_search_matches_email_or_name(staff_client, staff, customer):
    services.user_register(email="zed@example.org", password=PASSWORD, full_name="Zed Carlaberg")

    by_email = staff_client.get(USERS_URL, {"search": "CARLA@"}).json()
    by_name = staff_client.get(USERS_URL, {"search": "carlaberg"}).json()

    assert [user["email"] for user in by_email["results"]] == ["carla@example.com"]
    assert [user["email"] for user in by_name["results"]] == ["zed@example.org"]


def test_user_list_filters_on_is_active(staff_client, staff, customer):
    services.user_update(user=customer, is_active=False)

    inactive = staff_client.get(USERS_URL, {"is_active": "false"}).json()
    active = staff_client.get(USERS_URL, {"is_active": "true"}).json()

    assert [user["email"] for user in inactive["results"]] == [customer.email]
    assert [user["email"] for user in active["results"]] == [staff.email]


def test_user_detail_is_readable_by_staff(staff_client, customer):
    response = staff_client.get(user_url(customer.id))

    assert response.status_code == 200
    assert response.json()["email"] == customer.email


def test_user_patch_is_403_for_a_customer(customer_client, customer):
    response = customer_client.patch(user_url(customer.id), {"full_name": "Me Myself"}, format="json")

    assert_error(response, 403, "permission_denied")
    customer.refresh_from_db()
    assert customer.full_name == "Carla Customer"


def test_user_patch_is_401_anonymous(api_client, customer):
    response = api_client.patch(user_url(customer.id), {"is_active": False}, format="json")

    assert_error(response, 401, "not_authenticated")
    customer.refresh_from_db()
    assert customer.is_active is True


def test_user_patch_of_an_unknown_id_is_404(staff_client):
    response = staff_client.patch(
        user_url("00000000-0000-4000-8000-000000000000"), {"is_active": False}, format="json"
    )

    assert_error(response, 404, "not_found")


def test_user_patch_with_an_empty_body_is_400(staff_client, customer):
    assert_error(staff_client.patch(user_url(customer.id), {}, format="json"), 400, "validation_error")


def test_user_patch_with_a_non_boolean_is_active_names_the_field(staff_client, customer):
    response = staff_client.patch(user_url(customer.id), {"is_active": "maybe"}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"is_active"}
    customer.refresh_from_db()
    assert customer.is_active is True


def test_user_patch_renames_the_user(staff_client, customer):
    response = staff_client.patch(user_url(customer.id), {"full_name": "Carla Renamed"}, format="json")

    assert response.status_code == 200
    assert response.json()["full_name"] == "Carla Renamed"
    customer.refresh_from_db()
    assert customer.full_name == "Carla Renamed"


def test_user_patch_deactivates_the_user(staff_client, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.patch(user_url(customer.id), {"is_active": False}, format="json")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    customer.refresh_from_db()
    assert customer.is_active is False
    assert customer.deactivated_at is not None


@pytest.mark.parametrize("change", [{"is_active": False}, {"is_staff": False}])
def test_staff_cannot_take_their_own_access_away(staff_client, staff, change):
    response = staff_client.patch(user_url(staff.id), change, format="json")

    assert_error(response, 403, "own_access")
    staff.refresh_from_db()
    assert (staff.is_active, staff.is_staff) == (True, True)


def test_staff_may_rename_themselves_and_demote_another_member_of_staff(staff_client, staff, db):
    other = services.user_register(
        email="other.staff@example.com", password=PASSWORD, full_name="Other", is_staff=True
    )

    assert staff_client.patch(user_url(staff.id), {"full_name": "Sam S."}, format="json").status_code == 200
    response = staff_client.patch(user_url(other.id), {"is_staff": False}, format="json")

    assert response.status_code == 200
    other.refresh_from_db()
    assert other.is_staff is False


# Admin


def test_the_demo_staff_user_can_open_the_user_admin(client):
    call_command("seed", stdout=StringIO())
    client.force_login(User.objects.get(email="staff@example.com"))

    response = client.get("/admin/identity/identity/user/")

    assert response.status_code == 200
    assert b"customer@example.com" in response.content


def test_a_customer_cannot_open_the_user_admin(client, customer):
    client.force_login(customer)

    response = client.get("/admin/identity/identity/user/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/identity/login/")


def test_the_admin_deactivate_action_goes_through_the_service(
    client, staff, customer, login, published, django_capture_on_commit_callbacks
):
    login(customer.email)
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/identity/identity/user/", {"action": "deactivate", "_selected_action": [str(customer.pk)]}
        )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.is_active is False
    assert customer.deactivated_at is not None
    assert SignIn.objects.get(user=customer).end_reason == "account_changed"
    assert f"auth:user-version:{customer.pk}" in published


def _change_form(client, user) -> dict:
    """The user's change form as the admin renders it, as the fields a browser would post back."""
    page = client.get(f"/admin/identity/identity/user/{user.pk}/change/")
    form = page.context["adminform"].form
    fields = {name: form[name].value() for name in form.fields if name not in ("password",)}
    return {name: value for name, value in fields.items() if value not in (None, False)} | {
        "groups": [], "user_permissions": [], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("start", "change", "expected"),
    [
        ({}, {"is_active": False}, {"is_active": False}),  # unticking Active
        ({"is_staff": True}, {"is_staff": False}, {"is_staff": False}),  # demotion
    ],
)
def test_saving_the_admin_change_form_withdraws_tokens_like_the_service(
    client, staff, login, published, django_capture_on_commit_callbacks, start, change, expected
):
    member = services.user_register(email="m@example.com", password=PASSWORD, full_name="M", **start)
    tokens = login(member.email)
    client.force_login(staff)
    form = _change_form(client, member)
    form = {k: v for k, v in form.items() if k not in change or change[k]} | {
        k: "on" for k, v in change.items() if v
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/identity/identity/user/{member.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    member.refresh_from_db()
    assert {field: getattr(member, field) for field in expected} == expected
    assert member.auth_version == 2
    assert f"auth:user-version:{member.pk}" in published
    assert_error(
        client.__class__().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"), 401, "token_revoked"
    )


def test_the_admin_password_form_signs_the_user_out_everywhere(client, staff, customer, login):
    tokens = login(customer.email)
    client.force_login(staff)

    response = client.post(
        f"/admin/identity/identity/user/{customer.pk}/password/",
        {
            "password1": "brand-new-" + PASSWORD,
            "password2": "brand-new-" + PASSWORD,
            "usable_password": "true",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    customer.refresh_from_db()
    assert customer.check_password("brand-new-" + PASSWORD)
    assert SignIn.objects.get(user=customer).end_reason == "account_changed"
    assert customer.auth_version == 2
    assert_error(
        client.__class__().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"), 401, "token_revoked"
    )


def test_adding_a_user_in_the_admin_registers_them_through_the_service(client, staff):
    client.force_login(staff)

    response = client.post(
        "/admin/identity/identity/user/add/",
        {"email": "new@example.com", "full_name": "New", "password1": PASSWORD, "password2": PASSWORD,
         "usable_password": "true"},
    )  # fmt: skip

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get(email="new@example.com")
    assert OutboxEvent.objects.filter(
        event_type="user.registered", envelope__data__user_id=str(user.pk)
    ).exists()


# Health and unknown URLs


def test_liveness_is_healthy(api_client):
    response = api_client.get("/health/live")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_readiness_checks_database_broker_and_cache(api_client):
    response = api_client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy", body
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "up",
        "broker": "up",
        "cache": "up",
    }


def test_an_unknown_url_is_a_json_404(api_client):
    response = api_client.get("/no/such/page/")

    assert_error(response, 404, "not_found")

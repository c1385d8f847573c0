"""E-mail addresses have one form (identity.emails): registration stores it, sign-in and lookups match it
exactly. Addresses are written with escapes: the look-alikes are the point, and invisible in source."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError

from identity.emails import NON_ASCII_LOCAL_PART, normalize_email
from identity.models import User
from identity.tests.helpers import PASSWORD, TOKEN_URL, assert_error

pytestmark = pytest.mark.django_db

REGISTER_URL = "/api/v1/auth/register/"
KELVIN, LONG_S, DOTTED_I, DOTLESS_I, SHARP_S = "\u212a", "\u017f", "\u0130", "\u0131", "\u00df"
CYRILLIC_A, ZERO_WIDTH_SPACE, FULLWIDTH_AT = "\u0430", "\u200b", "\uff20"
TAKEN = "An account with this e-mail already exists."


def fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (U+FF01..U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in text)


def register(client, email: str):
    return client.post(
        REGISTER_URL, {"email": email, "password": PASSWORD, "full_name": "Someone"}, format="json"
    )


def sign_in(client, email: str):
    return client.post(TOKEN_URL, {"email": email, "password": PASSWORD}, format="json")


# Registered as typed: (typed, stored). Before one rule, the first four registered and then could not
# sign in as typed: Python lower-cased them at registration, Postgres' UPPER compared them at sign-in.
REGISTERS = [
    (f"{KELVIN}ate@example.com", "kate@example.com"),
    (f"ada@{KELVIN}ite.example", "ada@kite.example"),
    (f"ali@{DOTTED_I}stanbul.example", "ali@xn--istanbul-o0e.example"),
    (f"ali@{DOTTED_I}STANBUL.example", "ali@xn--istanbul-o0e.example"),
    ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
    (f"{LONG_S}am@example.com", "sam@example.com"),
    (fullwidth("bob") + "@example.com", "bob@example.com"),
    ("carla@" + fullwidth("EXAMPLE") + ".com", "carla@example.com"),
    (f"eve{FULLWIDTH_AT}example.com", "eve@example.com"),
    ("dora@b\u00fccher.example", "dora@xn--bcher-kva.example"),
    (f"carla@ex{CYRILLIC_A}mple.com", "carla@xn--exmple-4nf.com"),  # a look-alike, made visible
    (f"frank@example.com{ZERO_WIDTH_SPACE}", "frank@example.com"),
]
# Refused with a clear 400: no rule could show a look-alike in the part before the @.
NON_ASCII_LOCAL_PARTS = [
    f"{DOTTED_I}nci@example.com",
    f"{DOTLESS_I}lker@example.com",
    f"c{CYRILLIC_A}rla@example.com",
    f"stra{SHARP_S}e@example.com",
]


@pytest.mark.parametrize(("typed", "stored"), REGISTERS)
def test_normalize_email(typed, stored):
    assert normalize_email(typed) == stored
    assert normalize_email(stored) == stored  # the form is its own form


@pytest.mark.parametrize("typed", NON_ASCII_LOCAL_PARTS)
def test_normalize_email_refuses_non_ascii_local_parts(typed):
    with pytest.raises(ValidationError) as refused:
        normalize_email(typed)
    assert refused.value.messages == [NON_ASCII_LOCAL_PART]


@pytest.mark.parametrize("typed", ["a@b", "user@exa_mple.com", "no-at-sign", "x" * 250 + "@b\u00fccher.de"])
def test_normalize_email_refuses_invalid_addresses(typed):
    with pytest.raises(ValidationError):
        normalize_email(typed)


@pytest.mark.parametrize(("typed", "stored"), REGISTERS)
def test_every_address_that_registers_signs_in_as_typed_and_in_other_cases(api_client, typed, stored):
    response = register(api_client, typed)
    assert response.status_code == 201, response.content
    assert response.json()["email"] == stored

    for variant in (typed, stored, typed.upper(), typed.lower(), stored.upper()):
        assert sign_in(api_client, variant).status_code == 200, (typed, variant)


@pytest.mark.parametrize("typed", NON_ASCII_LOCAL_PARTS)
def test_a_non_ascii_local_part_is_refused_with_a_clear_400(api_client, typed):
    error = assert_error(register(api_client, typed), 400, "validation_error")
    assert error["fields"] == {"email": [NON_ASCII_LOCAL_PART]}
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "look_alike",
    [
        "CARLA@example.com",
        fullwidth("carla") + "@example.com",
        "carla@" + fullwidth("example") + ".com",
        f"carla{FULLWIDTH_AT}example.com",
        f"carla@example.com{ZERO_WIDTH_SPACE}",
        "carla@EXAMPLE.com",
    ],
)
@pytest.mark.parametrize("plain_first", [True, False])
def test_duplicates_across_normalization_are_refused_in_either_order(api_client, look_alike, plain_first):
    first, second = ("carla@example.com", look_alike) if plain_first else (look_alike, "carla@example.com")
    assert register(api_client, first).status_code == 201

    error = assert_error(register(api_client, second), 400, "validation_error")

    assert error["fields"] == {"email": [TAKEN]}
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("kate@example.com", f"{KELVIN}ate@example.com"),
        ("sam@example.com", f"{LONG_S}am@example.com"),
        ("dora@xn--bcher-kva.example", "dora@B\u00dcCHER.example"),
    ],
)
def test_look_alikes_mapping_to_a_taken_address_are_refused(api_client, first, second):
    assert register(api_client, first).status_code == 201
    assert_error(register(api_client, second), 400, "validation_error")


def test_a_look_alike_domain_registers_visibly_distinct(api_client):
    assert register(api_client, "carla@example.com").status_code == 201
    response = register(api_client, f"carla@ex{CYRILLIC_A}mple.com")

    assert response.status_code == 201
    assert response.json()["email"] == "carla@xn--exmple-4nf.com"
    assert sorted(User.objects.values_list("email", flat=True)) == [
        "carla@example.com",
        "carla@xn--exmple-4nf.com",
    ]


def test_a_sign_in_with_an_address_that_has_no_form_is_like_a_wrong_password(api_client):
    assert register(api_client, "inci@example.com").status_code == 201
    assert_error(sign_in(api_client, f"{DOTTED_I}nci@example.com"), 401, "authentication_failed")


def test_the_admin_form_path_stores_the_form_too():
    user = User(email=fullwidth("Gina") + "@Example.com", full_name="Gina")
    user.clean()
    assert user.email == "gina@example.com"

    user.email = f"c{CYRILLIC_A}rla@example.com"
    with pytest.raises(ValidationError) as refused:
        user.clean()
    assert refused.value.message_dict == {"email": [NON_ASCII_LOCAL_PART]}


# --- the data migration ---------------------------------------------------------------------------------


def _user(email: str) -> User:
    """A user whose stored address is exactly `email`, as code before the rule could leave it."""
    user = User.objects.create_user(email="placeholder@example.com", password=PASSWORD)
    User.objects.filter(pk=user.pk).update(email=email)
    return user


def test_the_migration_brings_existing_addresses_into_their_form(caplog, api_client):
    migration = importlib.import_module("identity.migrations.0004_normalize_emails")
    older_look_alike = _user(fullwidth("eve") + "@example.com")  # older, but not how Eve signs in today
    users = {
        "normal": _user("sam@example.com"),
        "long_s": _user(f"{LONG_S}am@example.com"),  # a look-alike of an account that keeps its form
        "case": _user("Bob@Example.com"),  # made in the admin before forms normalized
        "fullwidth_domain": _user("carla@" + fullwidth("example") + ".com"),
        "unicode_domain": _user("dora@b\u00fccher.example"),
        "dotted_i": _user("i\u0307nci@example.com"),  # what Python's lower() made of the I with a dot
        "eve": _user("Eve@example.com"),
    }

    with caplog.at_level("WARNING", logger="identity.migrations"):
        migration.normalize_existing_emails(django_apps, None)

    emails = {name: User.objects.get(pk=user.pk).email for name, user in users.items()}
    assert emails == {
        "normal": "sam@example.com",
        "long_s": f"{LONG_S}am@example.com",
        "case": "bob@example.com",
        "fullwidth_domain": "carla@example.com",
        "unicode_domain": "dora@xn--bcher-kva.example",
        "dotted_i": "i\u0307nci@example.com",
        "eve": "eve@example.com",
    }
    assert User.objects.get(pk=older_look_alike.pk).email == fullwidth("eve") + "@example.com"
    left_alone = {str(users["long_s"].pk), str(users["dotted_i"].pk), str(older_look_alike.pk)}
    assert {str(record.args[0]) for record in caplog.records} == left_alone
    assert sign_in(api_client, "Bob@Example.com").status_code == 200
    assert sign_in(api_client, "dora@B\u00dcCHER.example").status_code == 200

"""What every service's API does the same way, as its OpenAPI document says (shared.web.schema,
serializers, pagination), on the shared test service: JSON types are checked, not coerced; `page` is a
positive integer; every operation documents its errors in the contract's shape."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from shared.testing import access_token, bearer_client
from tests.ledger.models import Account

ENTRIES = "/api/v1/entries/"
ACCOUNTS = "/api/v1/accounts/"


@pytest.fixture
def signed_in(db):
    return bearer_client(access_token(user_id=str(uuid.uuid4())))


@pytest.fixture(scope="module")
def document(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        answer = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    return answer.json()


def _fields(answer) -> dict:
    return answer.json()["error"]["fields"]


# --- request bodies: strict JSON types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": "a", "count": "5"}, "count"),
        ({"name": "a", "count": 5.0}, "count"),
        ({"name": "a", "count": True}, "count"),
        ({"name": "a", "active": "yes"}, "active"),
        ({"name": "a", "active": 1}, "active"),
        ({"name": "a", "price": True}, "price"),
        ({"name": " abcde "}, "name"),  # 7 characters sent: DRF would trim it to 5 and take it
    ],
)
def test_a_value_of_another_json_type_or_too_long_is_a_400_naming_the_field(client, body, field):
    answer = client.post(ENTRIES, body, content_type="application/json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "validation_error"
    assert list(_fields(answer)) == [field]


def test_values_of_their_own_types_are_read(client):
    body = {"name": "abc", "count": 3, "price": "12.50", "active": False}

    answer = client.post(ENTRIES, body, content_type="application/json")

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"name": "abc", "count": "3", "price": "12.50", "active": "False"}


def test_a_decimal_may_also_be_a_json_number_exact_to_its_places(client):
    answer = client.post(ENTRIES, {"name": "a", "price": 12.5}, content_type="application/json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["price"] == "12.50"


# --- query strings and pages -------------------------------------------------------------------------------


# The last: ARABIC-INDIC DIGIT ONE, a digit to str.isdigit() that int() would read.
@pytest.mark.parametrize("page", ["0", "-1", "abc", "", "1.5", "\u0661"])
def test_a_page_that_is_not_a_positive_integer_is_a_400_naming_it(signed_in, page):
    answer = signed_in.get(ACCOUNTS, {"page": page})

    assert answer.status_code == 400, answer.content
    assert list(_fields(answer)) == ["page"]


def test_a_page_past_the_end_is_a_404_and_the_first_page_answers(signed_in):
    Account.objects.create(name="only")

    assert signed_in.get(ACCOUNTS, {"page": "2"}).status_code == 404
    answer = signed_in.get(ACCOUNTS, {"page": "1"})
    assert answer.status_code == 200
    assert [row["name"] for row in answer.json()["results"]] == ["only"]


def test_an_empty_query_parameter_is_invalid_not_ignored(signed_in):
    Account.objects.create(name="only")

    assert signed_in.get(ACCOUNTS, {"name": "only"}).json()["count"] == 1
    answer = signed_in.get(ACCOUNTS, {"name": ""})
    assert answer.status_code == 400
    assert list(_fields(answer)) == ["name"]


# --- the document -------------------------------------------------------------------------------------------


def _responses(document: dict, path: str, method: str) -> dict:
    return document["paths"][path][method]["responses"]


def test_every_operation_documents_its_errors_in_the_error_shape(document):
    post = _responses(document, ENTRIES, "post")
    listing = _responses(document, ACCOUNTS, "get")

    assert set(post) == {"200", "400", "401", "413", "415", "429", "503"}  # public: no 403
    assert set(listing) == {"200", "400", "401", "403", "404", "414", "429", "503"}
    error = post["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


def test_credentials_are_optional_where_anyone_may_call(document):
    assert {} in document["paths"][ENTRIES]["post"]["security"]
    assert {} not in document["paths"][ACCOUNTS]["get"]["security"]


def test_operations_are_tagged_by_resource(document):
    assert document["paths"][ENTRIES]["post"]["tags"] == ["entries"]
    assert document["paths"][ACCOUNTS]["get"]["tags"] == ["accounts"]


def test_input_constraints_the_server_applies_are_in_the_document(document):
    schema = document["components"]["schemas"]["EntryRequest"]
    name, price = schema["properties"]["name"], schema["properties"]["price"]

    assert name["pattern"] == r"[^\s\x1c-\x1f\x85]"  # DRF trims white space: a blank name is refused
    text, number = price["oneOf"]
    assert text["pattern"] == r"^(?:\d{1,4}(?:\.\d{0,2})?|\.\d{1,2})$"  # no sign: min_value 0
    assert (number["minimum"], number["maximum"], number["multipleOf"]) == (0.0, 9999.99, 0.01)
    assert schema["anyOf"] == [{"required": [field]} for field in ("name", "count", "price", "active")]
    page = next(p for p in document["paths"][ACCOUNTS]["get"]["parameters"] if p["name"] == "page")
    assert page["schema"] == {"type": "integer", "minimum": 1}

"""Every refusal in the contract's error shape: request bodies (shared.web.parsers), Django's own refusals
outside DRF (shared.web.errors' handlers and CSRF failure view), OPTIONS (shared.web.metadata)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connections
from django.http import Http404
from django.test import Client, RequestFactory
from django.urls import get_resolver

from shared.testing import (
    api_paths,
    assert_error,
    assert_refusals_in_error_shape,
    deeply_nested_json,
    options_failures,
)
from shared.web import errors
from shared.web.json_limits import json_depth
from tests.conftest import free_port

ECHO = "/api/echo/"
ADMIN = f"/{django_settings.ADMIN_URL_PATH}"


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def nested(depth: int) -> dict:
    """{"x": [[...]]} with `depth` levels in all (the object counts as one)."""
    return {"x": json.loads("[" * (depth - 1) + "]" * (depth - 1))}


def post_json(client, body: str, path: str = ECHO):
    return client.post(path, data=body, content_type="application/json")


# --- nesting ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),
        ("[]", 1),
        ('{"a": []}', 2),
        ('{"a": "[[[[", "b": {"c": "]]]}"}}', 2),
        ('["\\"[[", [1]]', 2),  # an escaped quote does not end the string
        ("[" * 1000 + "]" * 1000, 1000),
        ("[" * 1000, 1000),  # unbalanced: still counted, never parsed
    ],
)
def test_json_depth_counts_nesting_outside_strings(text, depth):
    assert json_depth(text) == depth


def test_json_depth_of_a_megabyte_of_brackets_does_not_recurse():
    assert json_depth("[]" * 500_000) == 1
    assert json_depth("[" * 1_000_000) == 1_000_000


def test_a_body_nested_1000_levels_deep_is_a_400_not_a_500(client):
    error = assert_error(post_json(client, deeply_nested_json()), 400, "malformed_request")
    assert "deeper than 32 levels" in error["message"]


def test_nesting_up_to_the_limit_is_parsed(client):
    response = post_json(client, json.dumps(nested(django_settings.JSON_MAX_DEPTH)))
    assert response.status_code == 200
    assert response.json() == nested(django_settings.JSON_MAX_DEPTH)


def test_one_level_more_than_the_limit_is_refused(client):
    body = json.dumps(nested(django_settings.JSON_MAX_DEPTH + 1))
    assert_error(post_json(client, body), 400, "malformed_request")


def test_the_limit_is_a_setting(client, settings):
    settings.JSON_MAX_DEPTH = 3
    assert post_json(client, json.dumps(nested(3))).status_code == 200
    assert_error(post_json(client, json.dumps(nested(4))), 400, "malformed_request")


def test_brackets_inside_strings_do_not_count(client):
    body = {"note": "[" * 5000, "other": "}" * 10 + '"{{'}
    response = post_json(client, json.dumps(body))
    assert response.status_code == 200
    assert response.json() == body


@pytest.mark.parametrize("body", ["{", '{"a": }', "[1, 2", '"\\ud800', "NaN", "\xff"])
def test_malformed_json_is_still_a_malformed_request(client, body):
    assert_error(post_json(client, body.encode("latin-1")), 400, "malformed_request")


def test_a_json_body_over_the_size_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    assert post_json(client, json.dumps({"x": "y" * 900})).status_code == 200
    assert_error(post_json(client, json.dumps({"x": "y" * 2000})), 413, "payload_too_large")


def test_field_messages_of_absurdly_nested_details_are_bounded():
    detail: list = ["innermost"]
    for _ in range(5000):
        detail = [detail, "sibling"]
    rendered = errors.field_messages(detail)  # no RecursionError
    levels = 0
    while isinstance(rendered[0], list):
        rendered, levels = rendered[0], levels + 1
    assert (rendered, levels) == (["Nested too deeply to report."], 100)


# --- Django's refusals outside DRF -------------------------------------------------------------------------


def test_djangos_refusals_answer_in_the_error_shape(client, settings):
    assert_refusals_in_error_shape(client=client, json_path=ECHO, settings=settings)


def test_an_unknown_host_on_an_api_path_is_a_json_400(client):
    response = client.post(ECHO, data="{}", content_type="application/json", HTTP_HOST="evil.example")
    assert_error(response, 400, "invalid_host")


def test_a_permission_denied_outside_drf_is_a_json_403(client):
    assert_error(client.get("/api/forbidden/"), 403, "permission_denied")


def test_a_bug_outside_drf_is_a_json_500_without_a_traceback(client):
    error = assert_error(client.get("/api/broken/"), 500, "server_error")
    assert "a bug outside DRF" not in json.dumps(error)


def test_a_body_too_large_for_a_form_outside_drf_is_413(settings):
    """CsrfViewMiddleware reads a form POST's body before any view: the 413 comes from Django."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies[settings.CSRF_COOKIE_NAME] = "a" * 32
    response = client.post("/health/live", data={"padding": "x" * 2048})
    assert_error(response, 413, "payload_too_large")


def test_every_handler_is_wired_from_shared_urls():
    resolver = get_resolver()
    handlers = {status: resolver.resolve_error_handler(status) for status in (400, 403, 404, 500)}
    assert handlers == {
        400: errors.bad_request,
        403: errors.permission_denied,
        404: errors.not_found,
        500: errors.server_error,
    }
    assert django_settings.CSRF_FAILURE_VIEW == "shared.web.errors.csrf_failure"


# The admin is read by people: its pages keep Django's HTML errors.


def test_a_csrf_failure_in_the_admin_is_djangos_html_page():
    response = Client(enforce_csrf_checks=True).post(f"{ADMIN}login/?local=1", {"username": "x"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (lambda request: errors.bad_request(request, Exception()), 400),
        (lambda request: errors.permission_denied(request, Exception()), 403),
        (lambda request: errors.not_found(request, Http404()), 404),
        (errors.server_error, 500),
    ],
)
def test_handlers_answer_html_in_the_admin_and_json_elsewhere(handler, status):
    admin_page = handler(RequestFactory().get(f"{ADMIN}orders/"))
    api = handler(RequestFactory().get("/api/v1/anything/"))
    assert (admin_page.status_code, api.status_code) == (status, status)
    assert admin_page["Content-Type"].startswith("text/html")
    assert api["Content-Type"] == "application/json"
    assert set(json.loads(api.content)) == {"error"}


# --- OPTIONS -----------------------------------------------------------------------------------------------


def test_options_describes_the_view_without_actions(client):
    response = client.options(ECHO)
    assert response.status_code == 200
    assert set(response.json()) == {"name", "description", "renders", "parses"}
    assert "POST" in response["Allow"]


def test_options_never_fails_on_any_route(client):
    paths = [path for path in api_paths() if path != "/api/broken/"]  # that one fails on purpose
    assert ECHO in paths and "/health/live" in paths
    assert options_failures({"anonymous": client}, paths) == []


@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_connections_is_a_503_with_retry_after_not_a_500(client):
    """What a client sees while Postgres restarts: a real connection attempt refused (nothing listens on
    the port), answered as a retryable 503 in the error shape."""
    assert client.get("/api/accounts/").status_code == 200
    connection = connections["default"]
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())  # free: nothing listens there
    try:
        refused = client.get("/api/accounts/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port

    assert refused.status_code == 503
    assert refused["Retry-After"] == str(errors.RETRY_AFTER_SECONDS)
    assert refused.json()["error"]["code"] == "database_unavailable"
    assert client.get("/api/accounts/").status_code == 200  # and back once it is


@pytest.mark.django_db(transaction=True)
def test_a_database_that_refuses_connections_is_a_503_on_the_admin_pages_too(admin_user):
    """Outside DRF (the admin's session and user are read by middleware and the admin's own views),
    people saw Django's 500 page while Postgres restarted."""
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    assert client.get(ADMIN).status_code == 200
    connection = connections["default"]
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        admin_page = client.get(ADMIN)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port

    assert admin_page.status_code == 503
    assert admin_page["Retry-After"] == str(errors.RETRY_AFTER_SECONDS)
    assert admin_page["Content-Type"].startswith("text/html")
    assert b"cannot reach its database" in admin_page.content
    assert client.get(ADMIN).status_code == 200  # and back once it is


def test_a_database_error_outside_drf_is_a_json_503_for_programs():
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = errors.server_error(RequestFactory().get("/api/v1/anything/"))

    assert (response.status_code, response["Retry-After"]) == (503, str(errors.RETRY_AFTER_SECONDS))
    assert json.loads(response.content)["error"]["code"] == "database_unavailable"

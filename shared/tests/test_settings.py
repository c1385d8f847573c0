"""What a service is told by its environment, and the clear refusal when something it needs is missing:
where the services it calls are (<NAME>_URL) and its keys. Nothing is guessed from the repository's
developer files (docs/development.md, "Configuration and service discovery")."""

from __future__ import annotations

from pathlib import Path

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from shared.auth.keys import load_key_pair
from shared.http import service_url
from shared.settings import service_settings
from shared.testing import generate_key_pair

ORDERS_DOWNSTREAMS = ["catalog", "inventory"]


def orders_like_settings(**options) -> dict:
    return service_settings(
        base_dir=Path(__file__).parent,
        service="orders_like",
        apps=[],
        downstreams=ORDERS_DOWNSTREAMS,
        **options,
    )


def test_the_urls_are_those_of_the_declared_downstreams_and_identity_for_a_client(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("CATALOG_URL", "http://catalog:8102")
    monkeypatch.setenv("INVENTORY_URL", "http://inventory:8103")
    monkeypatch.setenv("IDENTITY_URL", "http://identity:8101")
    monkeypatch.setenv("NOTIFICATIONS_URL", "http://notifications:8106")  # not called: not kept

    settings = orders_like_settings(service_client=True)

    assert settings["SERVICE_URLS"] == {
        "catalog": "http://catalog:8102",
        "inventory": "http://inventory:8103",
        "identity": "http://identity:8101",
    }
    assert settings["CIRCUIT_BREAKER_DOWNSTREAMS"] == ["catalog", "inventory", "identity"]


def test_with_debug_off_a_missing_downstream_url_stops_the_service_and_names_it(monkeypatch):
    monkeypatch.setenv("DEBUG", "false")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("CATALOG_URL", "http://catalog:8102")
    monkeypatch.delenv("INVENTORY_URL", raising=False)

    with pytest.raises(ImproperlyConfigured, match=r"^INVENTORY_URL is not set"):
        orders_like_settings()


def test_under_debug_a_missing_url_fails_at_the_call_with_the_variable_to_set(settings):
    settings.SERVICE_URLS = {"catalog": "http://catalog:8102"}

    assert service_url("catalog") == "http://catalog:8102"
    with pytest.raises(ImproperlyConfigured, match=r"^INVENTORY_URL is not set"):
        service_url("inventory")


def test_the_services_are_listed_by_the_deployment(monkeypatch):
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("PLATFORM_SERVICES", "identity,orders")
    assert orders_like_settings()["PLATFORM_SERVICES"] == ["identity", "orders"]

    monkeypatch.delenv("PLATFORM_SERVICES")
    assert orders_like_settings()["PLATFORM_SERVICES"] == ["orders_like"]  # alone, rather than guessed


def test_keys_are_read_from_the_environment_or_the_files_it_names_never_generated(tmp_path, monkeypatch):
    private, public = (key.decode() for key in generate_key_pair())
    (tmp_path / "public.pem").write_text(public)
    for name in ("JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY_FILE", "JWT_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)

    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(tmp_path / "public.pem"))
    assert load_key_pair(environ.Env(), signs=False).public_pem == public
    monkeypatch.setenv("JWT_PRIVATE_KEY", private)
    assert load_key_pair(environ.Env(), signs=True).private_pem == private

    monkeypatch.delenv("JWT_PRIVATE_KEY")
    monkeypatch.setenv("JWT_PRIVATE_KEY_FILE", str(tmp_path / "absent.pem"))
    with pytest.raises(ImproperlyConfigured, match=r"^no JWT_PRIVATE_KEY: set it .* or JWT_PRIVATE_KEY_FILE"):
        load_key_pair(environ.Env(), signs=True)
    assert not (tmp_path / "absent.pem").exists()

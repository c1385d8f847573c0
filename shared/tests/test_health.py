"""Readiness: healthy, degraded (broker or cache unreachable), unhealthy (database unreachable)."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test import Client

from tests.celery_app import app as celery_app


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def _ready() -> tuple[int, dict]:
    response = Client().get("/health/ready")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_all_dependencies_up_is_healthy():
    status, body = _ready()
    assert status == 200
    assert body["status"] == "healthy"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "up", "broker": "up", "cache": "up",
    }  # fmt: skip


@pytest.mark.django_db
def test_an_unreachable_broker_is_degraded_but_still_serving(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"amqp://guest:guest@127.0.0.1:{_closed_port()}//")
    status, body = _ready()
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"


@pytest.mark.django_db
def test_an_unreachable_cache_is_degraded(settings):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0"}
    }
    status, body = _ready()  # (overriding CACHES makes Django drop its connected cache handlers)
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["cache"]["status"] == "down"


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_unhealthy_with_503():
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(_closed_port())
    try:
        status, body = _ready()
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["database"]["status"] == "down"


def test_liveness_needs_nothing_but_the_process():
    response = Client().get("/health/live")
    assert response.status_code == 200 and response.json()["status"] == "healthy"

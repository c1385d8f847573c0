"""Correlation ids and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.test import Client

from shared.observability import context
from shared.observability.logging import logging_config


def _capture_json_logger(service: str) -> tuple[logging.Logger, io.StringIO]:
    config = logging_config(service=service)
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    config["root"] = {"handlers": [], "level": "INFO"}
    config["loggers"] = {"capture": {"handlers": ["console"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(config)
    return logging.getLogger("capture"), stream


@pytest.fixture
def restore_logging(settings):
    yield
    logging.config.dictConfig(settings.LOGGING)


def test_log_lines_are_json_with_service_and_correlation_id(restore_logging):
    logger, stream = _capture_json_logger("orders")
    with context.bound(correlation_id="corr-7"):
        logger.info("order accepted", extra={"order_id": "o-1"})
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "order accepted"
    assert line["service"] == "orders"
    assert line["correlation_id"] == "corr-7"
    assert line["order_id"] == "o-1"
    assert line["level"] == "INFO" and "time" in line


@pytest.mark.django_db
def test_request_id_is_taken_from_the_caller_and_echoed():
    response = Client().get("/health/live", headers={"X-Request-ID": "edge-123"})
    assert response["X-Request-ID"] == "edge-123"


@pytest.mark.django_db
def test_a_forged_or_missing_request_id_is_replaced():
    forged = Client().get("/health/live", headers={"X-Request-ID": "bad id\nwith newline"})
    missing = Client().get("/health/live")
    for response in (forged, missing):
        assert len(response["X-Request-ID"]) == 36  # a fresh UUID
    assert forged["X-Request-ID"] != missing["X-Request-ID"]


def test_bound_ids_are_restored_after_the_block():
    with context.bound(correlation_id="outer"):
        with context.bound(correlation_id="inner", causation_id="event-1"):
            assert (context.get_correlation_id(), context.get_causation_id()) == ("inner", "event-1")
        assert (context.get_correlation_id(), context.get_causation_id()) == ("outer", None)
    assert context.get_correlation_id() is None


def test_a_task_queued_during_a_flow_carries_its_correlation_id_into_the_worker():
    from types import SimpleNamespace

    from shared.messaging import celery as shared_celery

    headers: dict = {}
    with context.bound(correlation_id="journey-9"):
        shared_celery._stamp_correlation_id(headers=headers)
    assert headers == {shared_celery.CORRELATION_HEADER: "journey-9"}

    task = SimpleNamespace(request=SimpleNamespace(**headers))
    shared_celery._bind_correlation_id(task=task)
    assert context.get_correlation_id() == "journey-9"
    shared_celery._unbind_correlation_id(task=task)
    assert context.get_correlation_id() is None


def test_celery_per_task_received_and_succeeded_lines_are_dropped_but_retries_and_failures_kept(
    restore_logging,
):
    from celery.app.trace import LOG_FAILURE, LOG_RETRY, LOG_SUCCESS

    config = logging_config(service="orders")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    trace, strategy = logging.getLogger("celery.app.trace"), logging.getLogger("celery.worker.strategy")
    task = {"name": "orders.example", "id": "t-1", "runtime": 0.01, "return_value": None}
    strategy.info("Task %(name)s[%(id)s] received", task)
    trace.info(LOG_SUCCESS, task)
    trace.info(LOG_RETRY, {**task, "exc": "ConnectionError()"})
    trace.error(LOG_FAILURE, {**task, "exc": "ValueError()", "description": "raised unexpected"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["INFO", "ERROR"]
    assert "retry: ConnectionError()" in lines[0]["message"]
    assert "raised unexpected: ValueError()" in lines[1]["message"]

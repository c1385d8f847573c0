"""Trace context through the outbox, the tracing switches, and the JSON log line's trace fields."""

from __future__ import annotations

import json
import logging
import logging.config
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.messaging import inbox, relay
from shared.messaging.events import Event, new_event
from shared.messaging.models import OutboxEvent
from shared.observability import context, tracing
from shared.observability.gunicorn_conf import ACCESS_LOG_FORMAT, AccessLogFilter
from tests.conftest import worker_paused
from tests.ledger.services import account_credit
from tests.test_context import _capture_json_logger


@pytest.fixture
def restore_logging(settings):
    yield
    logging.config.dictConfig(settings.LOGGING)


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Every span this test process ends, kept in memory (the global provider is set once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "shared_tests"}))
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def _tracer():
    return trace.get_tracer("shared-tests")


def _ids(traceparent: str) -> tuple[int, int]:
    """(trace id, span id) of a W3C traceparent `00-<trace>-<span>-<flags>`."""
    _version, trace_id, span_id, _flags = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


def _spans_about(exporter: InMemorySpanExporter, event_id: str, name_suffix: str) -> list:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.attributes.get("messaging.message.id") == event_id and span.name.endswith(name_suffix)
    ]


@pytest.mark.django_db(transaction=True)
def test_an_event_carries_the_publishing_span_to_the_broker_and_into_its_handler(spans, observe):
    observer = observe(["ledger.credited"])
    with _tracer().start_as_current_span("POST /credits") as request_span:
        event = account_credit(account="traced", amount=3)
    request = request_span.get_span_context()

    envelope = OutboxEvent.objects.get(id=event.id).envelope
    assert _ids(envelope["traceparent"]) == (request.trace_id, request.span_id)

    observer.wait_for(1)
    headers = next(h for h, body in observer.messages if body[0][0]["id"] == event.id)
    [publish] = _spans_about(spans, event.id, "publish")
    assert publish.kind is SpanKind.PRODUCER and publish.parent.span_id == request.span_id
    assert _ids(headers["traceparent"]) == (request.trace_id, publish.context.span_id)

    inbox.deliver(envelope)  # here, outside any span: the envelope alone names the parent
    [process] = _spans_about(spans, event.id, "process")
    assert process.kind is SpanKind.CONSUMER
    assert process.context.trace_id == request.trace_id and process.parent.span_id == request.span_id


@pytest.mark.django_db(transaction=True)
def test_a_sweep_running_in_another_trace_still_continues_the_events_own_trace(spans, worker):
    with worker_paused(worker):  # its periodic sweep would publish the row first, in its own process
        relay._broker_down_until = time.monotonic() + 60  # the fast path stands aside: the sweep publishes
        with _tracer().start_as_current_span("handler") as handler_span:
            event = account_credit(account="swept", amount=1)
        relay._broker_down_until = 0.0
        assert OutboxEvent.objects.get(id=event.id).published_at is None

        with _tracer().start_as_current_span("run/messaging.relay_outbox") as sweep_span:
            relay.sweep()
    [publish] = _spans_about(spans, event.id, "publish")
    assert publish.context.trace_id == handler_span.get_span_context().trace_id
    assert publish.context.trace_id != sweep_span.get_span_context().trace_id
    assert publish.parent.span_id == handler_span.get_span_context().span_id


def test_an_envelope_has_no_traceparent_outside_a_span_and_a_bad_one_starts_a_new_trace(spans):
    assert "traceparent" not in new_event("ledger.credited", {"n": 1}).as_envelope()
    event = Event.from_envelope(
        {
            "id": context.new_id(),
            "type": "x.y",
            "version": 1,
            "occurred_at": "2026-12-05T00:00:00+00:00",
            "data": {},
        }
    )
    assert event.traceparent is None

    for bad in ("garbage", "00-00000000000000000000000000000000-0000000000000000-01", None, 42, ["x"]):
        with tracing.event_span("x.y process", bad, kind=SpanKind.CONSUMER, attributes={}) as span:
            assert span.get_span_context().is_valid
        assert span.parent is None


def test_log_lines_carry_the_trace_and_what_the_work_is_about(spans, restore_logging):
    logger, stream = _capture_json_logger("payments")
    with _tracer().start_as_current_span("work") as span, context.bound(correlation_id="corr-1"):
        with context.about(order_id="order-1", event_id="event-1", event_type="order.created"):
            logger.info("charging", extra={"event_id": "explicit-event"})
        logger.info("after")
    first, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(first)[:8] == [
        "time", "level", "service", "logger", "message", "correlation_id", "trace_id", "span_id",
    ]  # fmt: skip
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["span_id"] == format(span.get_span_context().span_id, "016x")
    assert first["order_id"] == "order-1" and first["event_type"] == "order.created"
    assert first["event_id"] == "explicit-event"  # what the caller passed wins over the context
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert "order_id" not in after and after["correlation_id"] == "corr-1"


def test_periodic_tasks_and_lone_queries_start_no_trace_but_requests_tasks_and_events_do():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._sampler(frozenset({"run/messaging.relay_outbox"})))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("run/messaging.relay_outbox"), tracer.start_as_current_span("SELECT"):
        pass
    with tracer.start_as_current_span("run/events.deliver"), tracer.start_as_current_span("SELECT"):
        pass
    with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):  # a probe's query: no entry point
        pass
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["SELECT", "run/events.deliver"]


def test_the_file_exporter_writes_one_json_line_per_span(tmp_path):
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(tracing.file_exporter("orders", tmp_path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        pass
    [trace_file] = tmp_path.glob("orders-*.jsonl")
    child, parent_line = (json.loads(line) for line in trace_file.read_text().splitlines())
    assert (child["name"], parent_line["name"]) == ("child", "parent")
    assert child["context"]["trace_id"] == parent_line["context"]["trace_id"]
    assert (
        child["parent_id"]
        == parent_line["context"]["span_id"]
        == f"0x{parent.get_span_context().span_id:016x}"
    )
    assert child["resource"]["attributes"]["service.name"] == "orders"


def test_the_exporter_is_chosen_by_environment_and_a_wrong_name_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing.exporter_name() == "none" and not tracing.configure("shared_tests")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "File")
    assert tracing.exporter_name() == "file"
    monkeypatch.setenv("OTEL_TRACES_DIR", str(tmp_path))
    assert tracing.traces_dir() == tmp_path
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(tracing.TracingConfigError, match="zipkin"):
        tracing.configure("shared_tests")


def test_gunicorn_access_lines_get_the_request_id_the_service_answered_with():
    atoms = {"m": "POST", "U": "/api/v1/orders/", "s": "201", "M": "12", "{x-request-id}o": "req-9"}
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(m)s %(U)s %(s)s", (atoms,), None)
    assert AccessLogFilter().filter(record)
    assert (record.correlation_id, record.method, record.status, record.duration_ms) == (
        "req-9",
        "POST",
        201,
        12,
    )
    assert record.getMessage() == "POST /api/v1/orders/ 201"


def test_probes_and_scrapes_leave_no_access_line():
    for path in ("/health/ready", "/metrics"):
        atoms = {"m": "GET", "U": path, "s": "200", "M": "1"}
        record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, ACCESS_LOG_FORMAT, (atoms,), None)
        assert not AccessLogFilter().filter(record)

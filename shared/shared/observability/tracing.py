"""OpenTelemetry tracing: one trace per business flow, across HTTP calls and events.

Off unless `OTEL_TRACES_EXPORTER` says where spans go:

- `none` (default): nothing is set up; the OpenTelemetry API answers with no-op spans.
- `file`: one JSON line per span, appended to `<OTEL_TRACES_DIR>/<service>-<pid>.jsonl` (default
  `var/<PLATFORM_INSTANCE>/traces/`). For local runs and the cross-service tests. The SDK's
  ConsoleSpanExporter writes to any stream with a formatter of our choosing, so no exporter of our own
  is needed; one file per process keeps lines from interleaving.
- `otlp`: OTLP over HTTP/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT` (a collector, or Jaeger in compose).

Set up once per process, after the fork (gunicorn `post_fork`, Celery `worker_process_init`): a
BatchSpanProcessor's export thread and an exporter's connections do not survive a fork, which is why the
OpenTelemetry docs ask for it. Django, Celery, requests and psycopg are instrumented; W3C trace context
travels in HTTP headers (requests -> Django) and Celery message headers, and, because events leave
through the outbox later and maybe from another process, in the event envelope itself (`traceparent`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.paths import REPO_ROOT

logger = logging.getLogger(__name__)

EXPORTERS = ("none", "file", "otlp")
TRACEPARENT = "traceparent"

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("shared")
_configured_pid: int | None = None


class TracingConfigError(ValueError):
    """OTEL_TRACES_EXPORTER names an exporter this project does not offer."""


def exporter_name() -> str:
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower() or "none"
    if name not in EXPORTERS:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name!r} is not one of {', '.join(EXPORTERS)}")
    return name


def enabled() -> bool:
    return exporter_name() != "none"


def traces_dir() -> Path:
    """Where the `file` exporter writes: OTEL_TRACES_DIR, else var/<PLATFORM_INSTANCE>/traces."""
    if configured := os.environ.get("OTEL_TRACES_DIR"):
        return Path(configured)
    return REPO_ROOT / "var" / os.environ.get("PLATFORM_INSTANCE", "dev") / "traces"


def configure(service: str, *, quiet_roots: Iterable[str] = ()) -> bool:
    """Install the tracer provider and the instrumentations in this process. True if tracing is on.

    `quiet_roots`: span names that are not recorded when they would start a trace (the periodic
    sweeps, which would otherwise add a trace every second per service). Safe to call twice.
    """
    global _configured_pid
    if _configured_pid == os.getpid():
        return True
    name = exporter_name()
    if name == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource, sampler=_sampler(frozenset(quiet_roots)))
    provider.add_span_processor(_span_processor(name, service))
    trace.set_tracer_provider(provider)
    _instrument()
    _configured_pid = os.getpid()
    logger.info("tracing on", extra={"exporter": name})
    return True


def _span_processor(name: str, service: str):
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())  # endpoint from OTEL_EXPORTER_OTLP_ENDPOINT
    # A local file: written as each span ends, so nothing is lost when a process is stopped.
    return SimpleSpanProcessor(file_exporter(service, traces_dir()))


def file_exporter(service: str, directory: Path):
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    directory.mkdir(parents=True, exist_ok=True)
    stream = (directory / f"{service}-{os.getpid()}.jsonl").open("a", encoding="utf-8")
    return ConsoleSpanExporter(service_name=service, out=stream, formatter=span_line)


def span_line(span) -> str:
    """The SDK's own JSON rendering of a span, on one line."""
    return span.to_json(indent=None) + "\n"


def _sampler(quiet_roots: frozenset[str]):
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )

    class QuietRoots(Sampler):
        """Records every new trace except those started by a span named in `quiet_roots`, or by an
        outgoing call (a query, an HTTP request) made outside any request, task or event: a health
        probe's database check, say. A trace starts where work enters a service."""

        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
            if name in quiet_roots or kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links)

        def get_description(self) -> str:
            return "QuietRoots"

    return ParentBased(root=QuietRoots())


def _instrument() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    # Django's middleware list is read when the WSGI handler loads: this runs before that.
    DjangoInstrumentor().instrument(excluded_urls="health/.*,metrics")
    CeleryInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    PsycopgInstrumentor().instrument()


# --- trace context in event envelopes ----------------------------------------------------------------


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, or None when there is none (tracing off)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from(traceparent: object) -> Context | None:
    """The remote parent a `traceparent` names; None if it is missing or malformed."""
    if not traceparent or not isinstance(traceparent, str):
        return None
    extracted = _propagator.extract({TRACEPARENT: traceparent})
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


def _trace_id(traceparent: object) -> int | None:
    parent = context_from(traceparent)
    return trace.get_current_span(parent).get_span_context().trace_id if parent else None


@contextmanager
def event_span(name: str, traceparent: object, *, kind: SpanKind, attributes: dict) -> Iterator:
    """A span about one event, continuing the trace the event was published in.

    The current span is the parent when it already belongs to that trace (Celery restored it from the
    message headers); otherwise the envelope's `traceparent` is, whatever runs now (a sweep, say).
    """
    current = trace.get_current_span().get_span_context()
    envelope_trace = _trace_id(traceparent)
    same_trace = envelope_trace is None or current.trace_id == envelope_trace
    parent = None if same_trace else context_from(traceparent)
    with _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        yield span


def message_headers() -> dict[str, str]:
    """W3C trace context of the current span, for a message's headers."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier

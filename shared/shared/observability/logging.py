"""One JSON line per log record, alike in every process of the platform.

Fields: time (ISO 8601, UTC, milliseconds), level, service, logger, message, correlation_id, trace_id,
span_id, then what the work is about (order_id, event_id, event_type: bound with `context.about` or
passed in `extra`) and whatever else a caller passes in `extra`. The gateway's nginx access log uses
the same `time` and carries the correlation id as `request_id`. `manage_all.py logs --correlation <id>`
joins every process's lines of one flow on these fields.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from shared.observability import context

FIELDS = ("time", "level", "service", "logger", "message", "correlation_id", "trace_id", "span_id")


class ContextFilter(logging.Filter):
    """Stamps every record with the service, the correlation id, the trace and what the work is about.

    Values a caller passed explicitly (`extra=`) or that an earlier filter set are kept.
    """

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service or os.environ.get("SERVICE_NAME", "")

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = context.get_correlation_id()
        # Only a recorded span is worth naming: an unsampled one (a periodic sweep) is in no trace store.
        span = trace.get_current_span().get_span_context()
        recorded = span.is_valid and span.trace_flags.sampled
        record.trace_id = format(span.trace_id, "032x") if recorded else None
        record.span_id = format(span.span_id, "016x") if recorded else None
        for name, value in context.log_fields().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class TaskSucceededFilter(logging.Filter):
    """Drops Celery's "Task ... succeeded in ..." line; retries and failures still pass.

    Every handler already logs what it did (`event handled`, `payment captured`...) with the order and
    event ids, and task runtimes are metrics: the success line only doubled the log volume of a saga,
    which every process formats and supervisord copies.
    """

    def __init__(self) -> None:
        super().__init__()
        from celery.app.trace import LOG_SUCCESS  # only when configured: not every process runs Celery

        self.success_message = LOG_SUCCESS

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != self.success_message


class JsonLineFormatter(JsonFormatter):
    """python-json-logger with ISO 8601 UTC times, which sort and compare across services and nginx."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def formatter_config(*, json: bool = True) -> dict:
    if json:
        return {
            "()": JsonLineFormatter,
            "fmt": "%(asctime)s %(levelname)s %(service)s %(name)s %(message)s %(correlation_id)s "
            "%(trace_id)s %(span_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    return {
        "()": TextFormatter,
        "fmt": "%(asctime)s %(levelname)s [%(service)s %(correlation_id)s] %(name)s: %(message)s",
    }


def logging_config(*, service: str, level: str = "INFO", json: bool = True) -> dict:
    """A `LOGGING` dict for Django settings (also used by Celery, which keeps Django's logging)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": ContextFilter, "service": service},
            "task_succeeded": {"()": TaskSucceededFilter},
        },
        "formatters": {"default": formatter_config(json=json)},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
            "celery": {"level": level},
            # Per task, Celery logs "received" and "succeeded" at INFO: see TaskSucceededFilter.
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"filters": ["task_succeeded"]},
            "amqp": {"level": "WARNING"},
            "kombu": {"level": "WARNING"},
        },
    }

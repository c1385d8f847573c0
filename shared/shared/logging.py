"""JSON log lines carrying the service name and the correlation id.

One line per record: time, level, service, logger, message, correlation_id, plus whatever a caller
passes in `extra` (event_id, order_id, ...), so every service's log can be filtered and joined alike.
"""

from __future__ import annotations

import logging
import os

from pythonjsonlogger.json import JsonFormatter

from shared import context


class ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current correlation id."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service or os.environ.get("SERVICE_NAME", "")

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = context.get_correlation_id()
        return True


def logging_config(*, service: str, level: str = "INFO", json: bool = True) -> dict:
    """A `LOGGING` dict for Django settings (also used by Celery, which keeps Django's logging)."""
    formatter = (
        {
            "()": JsonFormatter,
            "fmt": "%(asctime)s %(levelname)s %(service)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
        if json
        else {"format": "%(asctime)s %(levelname)s [%(service)s %(correlation_id)s] %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "service": service}},
        "formatters": {"default": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
            "celery": {"level": level},
            "amqp": {"level": "WARNING"},
            "kombu": {"level": "WARNING"},
        },
    }

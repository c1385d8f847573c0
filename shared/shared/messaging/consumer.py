"""The worker's consumer: Celery's, except that no message it cannot run is acknowledged and lost.

Celery rejects (without requeue) a message in a content type it does not accept, an unknown task and an
invalid task message, so RabbitMQ dead-letters them through the queue's dead-letter exchange. But a body
that does not decode (malformed JSON, a wrong encoding) goes to `on_decode_error`, which only logs and
ACKNOWLEDGES it: the message would be gone. Here it is rejected like the others, so it lands in the
service's dead-letter queue with reason `rejected`, where an operator can peek, fix and replay it
(docs/messaging.md). Every such refusal is counted in `celery_messages_rejected_total{reason}`.

Installed by `worker_consumer` (CELERY_WORKER_CONSUMER in shared.settings).
"""

from __future__ import annotations

import logging

from celery import signals
from celery.worker.consumer import Consumer

from shared.observability.metrics import MESSAGES_REJECTED

logger = logging.getLogger(__name__)


def _count(reason: str) -> None:
    MESSAGES_REJECTED.labels(reason=reason).inc()


class DeadLetteringConsumer(Consumer):
    def on_decode_error(self, message, exc):
        logger.error(
            "message body could not be decoded: dead-lettered",
            extra={
                "error": str(exc),
                "content_type": message.content_type,
                "content_encoding": message.content_encoding,
                "routing_key": (message.delivery_info or {}).get("routing_key"),
            },
        )
        message.reject_log_error(logger, self.connection_errors)
        _count("undecodable")
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def on_unknown_message(self, body, message):
        super().on_unknown_message(body, message)
        _count("unknown_message")

    def on_unknown_task(self, body, message, exc):
        super().on_unknown_task(body, message, exc)
        _count("unknown_task")

    def on_invalid_task(self, body, message, exc):
        super().on_invalid_task(body, message, exc)
        _count("invalid_task")

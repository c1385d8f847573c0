"""The AsyncAPI 3.0 document of the `domain.events` exchange, generated from the catalogue.

Channels are the routing keys (event types); each has one message per version, whose payload is the
envelope with that version's data schema; operations say who sends (the producer) and who receives
(each consumer, on its `<service>.events` queue: `x-service`, `x-queue`). Nothing here is written by
hand, so the document cannot drift from what publishers and consumers check.

    python -m shared.contracts.asyncapi > asyncapi.json

The data schemas are JSON Schema draft 2020-12 restricted to keywords that mean the same in draft-07,
AsyncAPI's default schema format; their `$schema` is left out of the document.
"""

from __future__ import annotations

import json
import sys
from itertools import groupby

from shared.contracts.events import CATALOGUE, ENVELOPE_SCHEMA, EventContract
from shared.messaging import topology

ASYNCAPI_VERSION = "3.0.0"
# The document's own version: raised when a contract is added or changed (the snapshot's diff says how).
DOCUMENT_VERSION = "1.0.0"
AMQP_BINDING_VERSION = "0.3.0"
ENVELOPE = "Envelope"


def document() -> dict:
    """The AsyncAPI 3.0 document of every event in the catalogue, as a dict (JSON-ready, stable order)."""
    by_type = {
        event_type: list(versions)
        for event_type, versions in groupby(sorted(CATALOGUE, key=_type_version), key=lambda c: c.type)
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Order platform domain events",
            "version": DOCUMENT_VERSION,
            "description": (
                f"Every event on the `{topology.EVENTS_EXCHANGE_NAME}` topic exchange (routing key = event "
                "type). Publishers write events to a transactional outbox; each consumer reads them from "
                "its own `<service>.events` quorum queue through an idempotent inbox (docs/messaging.md). "
                "Generated from shared.contracts.events: see docs/contracts.md, section Events."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "The local broker (BROKER_URL); every service uses the same exchange.",
            }
        },
        "channels": {event_type: _channel(event_type, versions) for event_type, versions in by_type.items()},
        "operations": _operations(by_type),
        "components": {
            "schemas": {
                ENVELOPE: _without_dialect(ENVELOPE_SCHEMA),
                **{_key(c): _without_dialect(c.schema) for c in sorted(CATALOGUE, key=_type_version)},
            },
            "messages": {_key(c): _message(c) for c in sorted(CATALOGUE, key=_type_version)},
        },
    }


def _type_version(contract: EventContract) -> tuple[str, int]:
    return contract.type, contract.version


def _key(contract: EventContract) -> str:
    return f"{contract.type}.v{contract.version}"


def _without_dialect(schema: dict) -> dict:
    return {key: value for key, value in schema.items() if key != "$schema"}


def _channel(event_type: str, versions: list[EventContract]) -> dict:
    return {
        "address": event_type,
        "description": versions[0].description,
        "messages": {_key(c): {"$ref": f"#/components/messages/{_key(c)}"} for c in versions},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": topology.EVENTS_EXCHANGE_NAME,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message(contract: EventContract) -> dict:
    return {
        "name": contract.type,
        "title": f"{contract.type} version {contract.version}",
        "summary": contract.description,
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": f"#/components/schemas/{ENVELOPE}"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": contract.type},
                        "version": {"const": contract.version},
                        "data": {"$ref": f"#/components/schemas/{_key(contract)}"},
                    },
                },
            ]
        },
        "examples": [{"name": _key(contract), "payload": example_envelope(contract)}],
    }


def example_envelope(contract: EventContract) -> dict:
    """The contract's example data in a complete envelope, as a publisher would write it."""
    return {
        "id": "0f1e2d3c-4b5a-4987-a6b5-c4d3e2f1a0b9",
        "type": contract.type,
        "version": contract.version,
        "occurred_at": "2026-12-04T23:00:00+00:00",
        "source": contract.producer,
        "correlation_id": "0f1e2d3c-4b5a-4987-a6b5-c4d3e2f1a0b9",
        "causation_id": None,
        "data": contract.example,
    }


def _operations(by_type: dict[str, list[EventContract]]) -> dict:
    operations = {}
    for event_type, versions in by_type.items():
        channel = {"$ref": f"#/channels/{event_type}"}
        for producer in sorted({c.producer for c in versions}):
            operations[f"{producer}.send.{event_type}"] = {
                "action": "send",
                "channel": channel,
                "summary": f"{producer} publishes {event_type} (through its outbox).",
                "messages": _message_refs(event_type, [c for c in versions if c.producer == producer]),
                "x-service": producer,
            }
        for consumer in sorted({name for c in versions for name in c.consumers}):
            operations[f"{consumer}.receive.{event_type}"] = {
                "action": "receive",
                "channel": channel,
                "summary": f"{consumer} consumes {event_type} from {topology.events_queue_name(consumer)}.",
                "messages": _message_refs(event_type, [c for c in versions if consumer in c.consumers]),
                "x-service": consumer,
                "x-queue": topology.events_queue_name(consumer),
            }
    return operations


def _message_refs(event_type: str, versions: list[EventContract]) -> list[dict]:
    return [{"$ref": f"#/channels/{event_type}/messages/{_key(c)}"} for c in versions]


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2)
    sys.stdout.write("\n")

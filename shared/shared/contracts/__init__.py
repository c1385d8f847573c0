"""Event contracts: the schemas every event is checked against, and the way between their versions.

- `events`: the catalogue (type, version, producer, consumers, schema, example) and the envelope schema.
- `asyncapi`: the AsyncAPI 3.0 document of `domain.events`, generated from the catalogue.
- here: looking a contract up, validating (publishers before the outbox, consumers before any handler),
  upcasting an event to the version a handler reads, and the version a producer publishes.

Besides the platform's catalogue, a service may declare contracts of its own (the shared test service's
`ledger.*` events) with the setting EXTRA_EVENT_CONTRACTS: dotted paths of tuples of `EventContract`.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string
from jsonschema import Draft202012Validator, FormatChecker

from shared.contracts.events import CATALOGUE, ENVELOPE_SCHEMA, EventContract

if TYPE_CHECKING:  # shared.messaging.events imports this module when it publishes
    from shared.messaging.events import Event

__all__ = [
    "EventContractError",
    "check_data",
    "check_envelope",
    "contract",
    "contracts",
    "data_errors",
    "published_version",
    "upcast",
]


class EventContractError(ValueError):
    """An event that no contract declares, or whose data breaks its contract's schema."""


def contracts() -> tuple[EventContract, ...]:
    """The platform's catalogue and this service's own contracts (EXTRA_EVENT_CONTRACTS)."""
    extra = getattr(settings, "EXTRA_EVENT_CONTRACTS", ())
    return CATALOGUE + tuple(item for path in extra for item in import_string(path))


def contract(event_type: str, version: int) -> EventContract | None:
    return next((c for c in contracts() if (c.type, c.version) == (event_type, version)), None)


@cache
def _data_validator(found: EventContract) -> Draft202012Validator:
    return _validator(found.schema)


@cache
def _envelope_validator() -> Draft202012Validator:
    return _validator(ENVELOPE_SCHEMA)


def _validator(schema: dict) -> Draft202012Validator:
    # Formats (uuid, date-time) are assertions here, not annotations: an id that is not a UUID is refused.
    return Draft202012Validator(schema, format_checker=FormatChecker())


def data_errors(event_type: str, version: int, data: object) -> list[str]:
    """How `data` breaks the schema of `event_type` `version`, as `path: message` lines; empty if valid.

    Raises EventContractError when no contract declares that type and version."""
    found = contract(event_type, version)
    if found is None:
        raise EventContractError(f"no contract declares {event_type} version {version}")
    return _errors(_data_validator(found), data, prefix="data")


def _errors(validator: Draft202012Validator, instance: object, *, prefix: str) -> list[str]:
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(map(str, error.absolute_path)))
    return [f"{'.'.join([prefix, *map(str, error.absolute_path)])}: {error.message}" for error in errors]


def check_data(event_type: str, version: int, data: object) -> None:
    """Raise EventContractError, naming every violation, unless `data` matches its contract."""
    errors = data_errors(event_type, version, data)
    if errors:
        raise EventContractError(f"{event_type} version {version} breaks its schema: {'; '.join(errors)}")


def check_envelope(envelope: dict) -> None:
    """The whole envelope (what a publisher writes to its outbox) against the envelope's and its data's
    schemas: raises EventContractError naming what is wrong."""
    errors = _errors(_envelope_validator(), envelope, prefix="envelope")
    if errors:
        raise EventContractError(f"invalid event envelope: {'; '.join(errors)}")
    check_data(envelope["type"], envelope["version"], envelope["data"])


def upcast(event: Event, *, to_version: int | None = None) -> Event:
    """The event with its data in `to_version`'s shape (default: the newest version declared), each
    step by the next version's `upcaster`. A handler that accepts several versions reads one shape.

    An event already at (or past) `to_version` is returned as it is."""
    target = to_version or max(c.version for c in contracts() if c.type == event.type)
    data, version = event.data, event.version
    while version < target:
        step = contract(event.type, version + 1)
        if step is None or step.upcaster is None:
            raise EventContractError(f"no upcaster from {event.type} version {version} to {version + 1}")
        data, version = step.upcaster(data), version + 1
    return dataclasses.replace(event, version=version, data=data)


def published_version(event_type: str) -> int:
    """The version of `event_type` this service publishes: settings.EVENT_VERSIONS, else 1.

    Raised only once every consumer accepts the new version (docs/contracts.md)."""
    return int(getattr(settings, "EVENT_VERSIONS", {}).get(event_type, 1))

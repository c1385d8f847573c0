"""The saga timeline of one order, for the orders admin (docs/admin.md): every service's part of the saga
(shared.saga, read through each service's own `/internal/` API), merged into one list in time order, and,
when the order has not finished, where the saga waits.

Where it waits is read from the facts, in this order: an event still waiting in some service's outbox;
an event about the order parked in a dead-letter queue; an event published that a service subscribing to
its type has not consumed; and when nothing is outstanding between services, the service whose own work
the order's status waits on (inventory's reservation while pending, payments' charge while awaiting
payment). The same facts on a finished order are listed as still outstanding (a late e-mail, a refund).

Times come from each service's own clock; on one machine, or hosts kept in sync, the order holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orders import clients
from orders.clients import SagaPartAnswer
from orders.models import TERMINAL_STATUSES, Order, OrderStatus
from shared.admin_ui.links import admin_link
from shared.admin_ui.nav import admin_path, platform_services
from shared.saga.api import SagaPartSerializer
from shared.saga.selectors import saga_part

logger = logging.getLogger(__name__)

# Whose own work a non-terminal order waits on once no event is outstanding between services.
WAITS_ON_BY_STATUS = {
    OrderStatus.PENDING: ("inventory", "the reservation"),
    OrderStatus.AWAITING_PAYMENT: ("payments", "the charge"),
}
# Entries at the same instant: what was consumed, then what its handler did, then what it published.
KIND_ORDER = {"consumed": 0, "record": 1, "published": 2, "pending": 2, "dead-lettered": 3}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    service: str
    kind: str  # consumed, record, published, pending (still in the outbox), dead-lettered
    what: str  # the event type, or the record's kind
    summary: str
    links: tuple[SafeString, ...] = ()
    event_id: str = ""
    correlation_id: str = ""
    deliveries: int | None = None
    details: tuple[tuple[str, str], ...] = ()
    since_placed: str = ""  # how long after the order was placed


@dataclass(frozen=True)
class ServiceState:
    """How a service answered: its part, or why there is none; and how far its dead letters were read."""

    service: str
    available: bool
    error: str = ""
    dead_letters: str = ""


@dataclass(frozen=True)
class Finding:
    service: str  # where the saga waits
    text: str


@dataclass(frozen=True)
class Timeline:
    order: Order
    now: datetime
    entries: list[TimelineEntry]
    services: list[ServiceState]
    findings: list[Finding] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.order.status in TERMINAL_STATUSES

    @property
    def age_seconds(self) -> float:
        return (self.now - self.order.created_at).total_seconds()

    @property
    def age(self) -> str:
        return _duration(self.now - self.order.created_at)

    @property
    def stuck(self) -> bool:
        """Not finished past SAGA_STUCK_SECONDS (the alert SagaStuck uses the same threshold)."""
        return not self.terminal and self.age_seconds >= settings.SAGA_STUCK_SECONDS

    @property
    def waiting_on(self) -> str | None:
        """The service the saga waits on, when it has not finished and that can be told."""
        if self.terminal or not self.findings:
            return None
        return self.findings[0].service


def order_timeline(*, order: Order) -> Timeline:
    """The order's saga across every service of the platform, asked concurrently (orders' own part is read
    here, from its own tables). A service that does not answer is shown as unavailable."""
    now = timezone.now()
    own = settings.SERVICE_NAME
    services = list(platform_services())
    answers = clients.saga_parts(order_id=order.id, services=[name for name in services if name != own])
    answers[own] = _own_part(order)
    by_service = [_entries_or_unavailable(answers[name]) for name in services if name in answers]
    ordered = [answer for answer, _entries in by_service]
    entries = sorted(
        (entry for _answer, service_entries in by_service for entry in service_entries),
        key=lambda entry: (entry.at, KIND_ORDER[entry.kind], services.index(entry.service)),
    )
    return Timeline(
        order=order,
        now=now,
        entries=[replace(entry, since_placed=_offset(entry.at - order.created_at)) for entry in entries],
        services=[_state(answer) for answer in ordered],
        findings=_findings(order, ordered, now),
    )


def _own_part(order: Order) -> SagaPartAnswer:
    """orders' own part, through the same serializer the other services answer with."""
    try:
        return SagaPartAnswer(
            settings.SERVICE_NAME, part=SagaPartSerializer(saga_part(order_id=order.id)).data
        )
    except Exception as exc:  # the page still shows the other services' parts
        logger.exception("own saga part not read", extra={"order_id": str(order.id)})
        return SagaPartAnswer(settings.SERVICE_NAME, error=f"{type(exc).__name__}: {exc}")


# --- entries --------------------------------------------------------------------------------------------


def _time(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else value


def _short(value) -> str:
    return str(value)[:8]


def _entries_or_unavailable(answer: SagaPartAnswer) -> tuple[SagaPartAnswer, list[TimelineEntry]]:
    """The service's entries; a part whose values cannot be read makes the service unavailable."""
    if not answer.available:
        return answer, []
    try:
        return answer, _entries(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.exception("saga part unreadable", extra={"downstream": answer.service})
        return SagaPartAnswer(answer.service, error=f"answered a part that cannot be read ({exc!r})"), []


def _entries(answer: SagaPartAnswer) -> list[TimelineEntry]:
    service, part = answer.service, answer.part
    entries = [_published(service, row) for row in part["outbox"]]
    entries += [_consumed(service, row) for row in part["inbox"]]
    entries += [
        _dead_letter(service, dead) for dead in part["dead_letters"]["messages"] if dead["first_death_at"]
    ]
    entries += [_record(service, record) for record in part["records"]]
    return entries


def _published(service: str, row: dict) -> TimelineEntry:
    written, confirmed = _time(row["created_at"]), _time(row["published_at"])
    if confirmed:
        kind, summary = (
            "published",
            f"published; the broker confirmed it {_duration(confirmed - written)} later",
        )
    else:
        kind = "pending"
        summary = f"waiting in the outbox, not published yet ({row['attempts']} attempts)"
        if row["last_error"]:
            summary += f"; last error: {row['last_error']}"
    return TimelineEntry(
        at=written,
        service=service,
        kind=kind,
        what=row["event_type"],
        summary=summary,
        links=(admin_link(row["id"], service=service, model="messaging.outboxevent", text="outbox row"),),
        event_id=str(row["id"]),
        correlation_id=row["correlation_id"],
    )


def _consumed(service: str, row: dict) -> TimelineEntry:
    deliveries = row["deliveries"]
    summary = f"consumed by {row['consumer']}"
    if deliveries > 1:
        summary += f"; delivered {deliveries} times, the duplicates skipped"
    return TimelineEntry(
        at=_time(row["received_at"]),
        service=service,
        kind="consumed",
        what=row["event_type"],
        summary=summary,
        links=(admin_link(row["id"], service=service, model="messaging.inboxmessage", text="inbox row"),),
        event_id=str(row["event_id"]),
        correlation_id=row["correlation_id"],
        deliveries=deliveries,
    )


def _dead_letter(service: str, dead: dict) -> TimelineEntry:
    summary = f"dead-lettered ({dead['reason']}) from {dead['queue']} after {dead['death_count']} deaths"
    if dead["replayed"]:
        summary += f"; replayed {dead['replayed']} times before"
    page = format_html('<a href="{}messaging/dead-letters/">dead letters</a>', admin_path(service))
    return TimelineEntry(
        at=_time(dead["first_death_at"]),
        service=service,
        kind="dead-lettered",
        what=dead["event_type"] or "(not an event)",
        summary=summary,
        links=(page,),
        event_id=str(dead["id"] or ""),
        correlation_id=dead["correlation_id"] or "",
    )


def _record(service: str, record: dict) -> TimelineEntry:
    link = None
    if record["admin_model"] and record["object_id"]:
        link = admin_link(
            record["object_id"], service=service, model=record["admin_model"], text=record["kind"]
        )
    details = tuple(
        (name, str(value)) for name, value in record["details"].items() if value not in (None, "", [])
    )
    return TimelineEntry(
        at=_time(record["at"]),
        service=service,
        kind="record",
        what=record["kind"],
        summary=record["summary"],
        links=(link,) if link else (),
        details=details,
    )


def _state(answer: SagaPartAnswer) -> ServiceState:
    if not answer.available:
        return ServiceState(answer.service, available=False, error=answer.error)
    dead = answer.part["dead_letters"]
    if dead["error"]:
        note = f"dead letters not readable: {dead['error']}"
    elif dead["complete"]:
        note = f"all {dead['scanned']} dead letters looked at"
    else:
        note = f"only the first {dead['scanned']} dead letters looked at"
    return ServiceState(answer.service, available=True, dead_letters=note)


# --- where it waits -------------------------------------------------------------------------------------


def _findings(order: Order, answers: list[SagaPartAnswer], now: datetime) -> list[Finding]:
    """What holds the saga up, most telling first (module docstring)."""
    parts = {answer.service: answer.part for answer in answers if answer.available}
    findings: list[Finding] = []
    for service, part in parts.items():
        for row in part["outbox"]:
            if not row["published_at"]:
                text = (
                    f"{row['event_type']} has waited in {service}'s outbox for "
                    f"{_duration(now - _time(row['created_at']))} ({row['attempts']} publish attempts"
                    + (f", last error: {row['last_error']})" if row["last_error"] else ")")
                )
                findings.append(Finding(service, text))
    for service, part in parts.items():
        for dead in part["dead_letters"]["messages"]:
            findings.append(
                Finding(
                    service,
                    f"{service} dead-lettered {dead['event_type'] or 'a message'} ({dead['reason']}): "
                    "replay it from its dead-letter page",
                )
            )
    findings += _not_consumed(parts, now)
    if order.status not in TERMINAL_STATUSES and not findings:
        findings += _waiting_by_status(order, parts)
    for answer in answers:
        if not answer.available:
            findings.append(
                Finding(
                    answer.service, f"{answer.service} did not answer ({answer.error}): its part is unknown"
                )
            )
    return findings


def _not_consumed(parts: dict[str, dict], now: datetime) -> list[Finding]:
    """Published events about the order that a service subscribing to their type has not consumed."""
    consumed = {(service, str(row["event_id"])) for service, part in parts.items() for row in part["inbox"]}
    published = sorted(
        (
            (publisher, row)
            for publisher, part in parts.items()
            for row in part["outbox"]
            if row["published_at"]
        ),
        key=lambda item: _time(item[1]["published_at"]),
    )
    findings = []
    for publisher, row in published:
        for service, part in parts.items():
            if row["event_type"] in part["consumes"] and (service, str(row["id"])) not in consumed:
                ago = _duration(now - _time(row["published_at"]))
                text = (
                    f"{row['event_type']} published by {publisher} {ago} ago; {service} has not consumed it"
                )
                findings.append(Finding(service, text))
    return findings


def _waiting_by_status(order: Order, parts: dict[str, dict]) -> list[Finding]:
    service, work = WAITS_ON_BY_STATUS[order.status]
    text = f"the order is {order.status}: it waits on {service} for {work}"
    records = parts.get(service, {}).get("records") or []
    if records:
        text += f" (latest: {records[-1]['kind']} {records[-1]['summary']})"
    return [Finding(service, text)]


def _offset(delta: timedelta) -> str:
    """+12.3 s; negative when another service's clock runs behind ours."""
    return f"-{_duration(-delta)}" if delta < timedelta(0) else f"+{_duration(delta)}"


def _duration(delta: timedelta) -> str:
    """A duration for people: 4 ms, 12.3 s, 2 min 5 s, 1 h 3 min."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"

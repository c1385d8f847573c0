"""See and replay the messages a service's queues dead-lettered into `<service>.dead-letter`.

A message lands there when its handler kept failing past the quorum queue's delivery limit
(`reason = delivery_limit`), when it was not an event at all (`rejected`), or when it expired. RabbitMQ
records why in the `x-death` header: a list of `{queue, reason, count, time, exchange, routing-keys}`,
most recent first. The messages are Celery task messages (headers `task`, `id`; body
`[args, kwargs, embed]`); for `events.deliver` the task id is the event id and `args[0]` the envelope.

- `peek(limit)` reads without removing: `basic.get` without acknowledging, then the channel is
  closed, which returns every message to the queue in its place. Trade-off: a quorum queue counts
  such a return as a delivery. The dead-letter queue declares no delivery limit, so on RabbitMQ 3.x
  that count only grows, harmlessly. RabbitMQ 4.0 to 4.2 give every quorum queue a default limit of
  20 deliveries and drop a message past it when the queue has no dead-letter target of its own, so
  on RabbitMQ 4.x the dead-letter queues need an unlimited limit (a policy `{"delivery-limit": -1}`
  on `\\.dead-letter$`). 4.3 changed which returns count; the policy is the safe setting on any 4.x.
- `replay(ids)` moves the chosen messages (all if `ids` is None) back to the queue they died in,
  `<service>.events` or `<service>.tasks`, through the default exchange with that queue's name as
  routing key: only this service receives them again, never every subscriber of the event. Each is
  published with publisher confirms and acknowledged (removed) from the dead-letter queue only after
  the broker confirmed it, so a crash in between leaves a duplicate, never a loss; the consumers'
  inbox absorbs the duplicate.
- `purge(ids)` discards the chosen messages (the admin page asks for a confirmation first).

The same operations are offered by `manage.py deadletters list|replay|purge` and, once
`install_admin(admin.site)` is called, by a page of the Django admin (Messaging > Dead letters).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

from amqp import Message as AmqpMessage
from celery import current_app
from django.conf import settings

from shared.admin_ui import redaction
from shared.messaging import topology
from shared.messaging.relay import DELIVER_TASK
from shared.web import json_limits

logger = logging.getLogger(__name__)

# Replay and purge hold every message they looked at until they are done (so none is seen twice);
# this bounds how many that can be.
MAX_SCAN = 10_000
# Headers about the message's past in the dead-letter queue; the replayed copy starts clean.
DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
        "x-delivery-count",
        "x-acquired-count",
    }
)
REPLAYED_HEADER = "x-replayed"


@dataclass(frozen=True)
class DeadLetter:
    """One parked message, as an operator wants to see it."""

    id: str | None  # the Celery task id; for `events.deliver` the event id
    task: str | None
    event_type: str | None
    reason: str | None  # delivery_limit, rejected, expired, maxlen
    queue: str | None  # the queue it was dead-lettered from (most recently)
    death_count: int
    first_death_at: datetime | None
    replayed: int = 0  # how often an operator replayed it before
    # How often it went back to the dead-letter queue unacknowledged (peeks), as the broker counts it
    # (`x-delivery-count`); what matters on a broker that limits deliveries (module docstring).
    returns: int = 0
    envelope: dict | None = None
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)

    @property
    def payload(self) -> str:
        """The envelope (events) or the arguments (other tasks), as readable JSON, card tokens hidden."""
        shown = self.envelope if self.envelope is not None else [self.args, self.kwargs]
        return json.dumps(redaction.redact(shown), indent=2, sort_keys=True, default=str)


def _service(service: str | None) -> str:
    return service or settings.SERVICE_NAME


def _utc(moment) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # py-amqp gives naive UTC


def _decode_body(message: AmqpMessage) -> tuple[list, dict]:
    """Celery protocol 2 (`[args, kwargs, embed]`) or 1 (`{"args", "kwargs", ...}`); else nothing."""
    body = message.body
    try:
        if isinstance(body, bytes | bytearray):
            body = body.decode(message.properties.get("content_encoding") or "utf-8")
        decoded = json_limits.loads(body, max_depth=64)  # a parked message can be anything: bounded
    except (LookupError, UnicodeDecodeError, ValueError):
        return [], {}
    if isinstance(decoded, list) and len(decoded) >= 2:
        args, kwargs = decoded[0], decoded[1]
    elif isinstance(decoded, dict):
        args, kwargs = decoded.get("args"), decoded.get("kwargs")
    else:
        return [], {}
    args = list(args) if isinstance(args, list | tuple) else []
    return args, kwargs if isinstance(kwargs, dict) else {}


def describe(message: AmqpMessage) -> DeadLetter:
    """What a raw dead-lettered message is: its task, event, and why and where it died."""
    headers = message.properties.get("application_headers") or {}
    deaths = [death for death in headers.get("x-death") or [] if isinstance(death, dict)]
    latest = deaths[0] if deaths else {}
    death_times = [moment for moment in (_utc(death.get("time")) for death in deaths) if moment]
    args, kwargs = _decode_body(message)
    task = headers.get("task")
    envelope = args[0] if task == DELIVER_TASK and args and isinstance(args[0], dict) else None
    properties = message.properties
    task_id = headers.get("id") or properties.get("correlation_id") or properties.get("message_id")
    return DeadLetter(
        id=str(task_id) if task_id is not None else None,
        task=task,
        event_type=envelope.get("type") if envelope else None,
        reason=latest.get("reason") or headers.get("x-first-death-reason"),
        queue=latest.get("queue") or headers.get("x-first-death-queue"),
        death_count=sum(int(death.get("count") or 1) for death in deaths),
        first_death_at=min(death_times) if death_times else None,
        replayed=int(headers.get(REPLAYED_HEADER) or 0),
        returns=int(headers.get("x-delivery-count") or 0),
        envelope=envelope,
        args=args,
        kwargs=kwargs,
    )


def replay_queue(dead: DeadLetter, service: str) -> str:
    """The service's own queue the message died in; else events for events, tasks for the rest."""
    own_queues = {topology.events_queue_name(service), topology.tasks_queue_name(service)}
    if dead.queue in own_queues:
        return dead.queue
    if dead.task == DELIVER_TASK:
        return topology.events_queue_name(service)
    return topology.tasks_queue_name(service)


@contextmanager
def _broker_channel() -> Iterator:
    """A fresh channel on a fresh connection. Closing it returns whatever it did not acknowledge."""
    with current_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.channel()
        try:
            yield channel
        finally:
            with suppress(Exception):  # a channel the broker already closed returned everything itself
                channel.close()


def _take(channel, queue: str, limit: int) -> list[tuple[AmqpMessage, DeadLetter]]:
    """Get up to `limit` messages without acknowledging them: nobody else sees them meanwhile."""
    taken = []
    while len(taken) < limit:
        message = channel.basic_get(queue=queue, no_ack=False)
        if message is None:
            break
        taken.append((message, describe(message)))
    return taken


def depth(*, service: str | None = None) -> int:
    """How many messages wait in the service's dead-letter queue (not counting ones being peeked)."""
    with _broker_channel() as channel:
        _name, messages, _consumers = channel.queue_declare(
            queue=topology.dead_letter_queue_name(_service(service)), passive=True
        )
        return messages


def peek(limit: int = 50, *, service: str | None = None) -> list[DeadLetter]:
    """The first `limit` dead letters of the service, left in the queue (see the module docstring)."""
    with _broker_channel() as channel:
        taken = _take(channel, topology.dead_letter_queue_name(_service(service)), limit)
    # Closing the channel returned every message to the queue, in its place.
    return [dead for _message, dead in taken]


def _copy_for_replay(message: AmqpMessage, dead: DeadLetter) -> AmqpMessage:
    headers = {
        key: value
        for key, value in (message.properties.get("application_headers") or {}).items()
        if key not in DEATH_HEADERS
    }
    headers[REPLAYED_HEADER] = dead.replayed + 1
    properties = {key: value for key, value in message.properties.items() if key != "application_headers"}
    properties["delivery_mode"] = 2  # persistent, like everything the platform publishes
    return AmqpMessage(message.body, application_headers=headers, **properties)


def _select(taken, ids: list[str] | None):
    wanted = None if ids is None else {str(message_id) for message_id in ids}
    return [(message, dead) for message, dead in taken if wanted is None or dead.id in wanted]


def _log_fields(dead: DeadLetter) -> dict:
    return {"task_id": dead.id, "task": dead.task, "event_type": dead.event_type}


def replay(ids: list[str] | None = None, *, service: str | None = None) -> int:
    """Move the chosen dead letters (all if `ids` is None) back to their queue. Returns how many.

    Each copy is confirmed by the broker before its dead letter is acknowledged. The first failure
    stops the replay; what was not moved yet stays in the dead-letter queue.
    """
    service = _service(service)
    replayed = 0
    with _broker_channel() as channel:
        taken = _take(channel, topology.dead_letter_queue_name(service), MAX_SCAN)
        for message, dead in _select(taken, ids):
            target = replay_queue(dead, service)
            # mandatory: a queue that does not exist makes the broker return it, which raises here
            channel.basic_publish_confirm(
                _copy_for_replay(message, dead), exchange="", routing_key=target, mandatory=True
            )
            channel.basic_ack(delivery_tag=message.delivery_info["delivery_tag"])
            replayed += 1
            logger.info("dead letter replayed", extra={**_log_fields(dead), "queue": target})
    # Closing the channel returned the messages not chosen (or not reached after a failure).
    return replayed


def purge(ids: list[str] | None, *, service: str | None = None) -> int:
    """Discard the chosen dead letters (every one if `ids` is None). Returns how many."""
    service = _service(service)
    with _broker_channel() as channel:
        taken = _take(channel, topology.dead_letter_queue_name(service), MAX_SCAN)
        chosen = _select(taken, ids)
        for message, dead in chosen:
            channel.basic_ack(delivery_tag=message.delivery_info["delivery_tag"])
            logger.warning("dead letter discarded", extra=_log_fields(dead))
    return len(chosen)


# The admin page ------------------------------------------------------------------------------------

ADMIN_PAGE_LIMIT = 200
VIEW_PERMISSION = "messaging.view_outboxevent"
# Whoever may republish the outbox may replay or discard dead letters.
CHANGE_PERMISSION = "messaging.change_outboxevent"

_ADMIN_TEMPLATE = """{% extends "admin/base_site.html" %}
{% block breadcrumbs %}<div class="breadcrumbs"><a href="{% url 'admin:index' %}">Home</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label='messaging' %}">Messaging</a> &rsaquo; Dead letters</div>
{% endblock %}
{% block content %}
<p>Queue <code>{{ queue }}</code>: {{ total }} message{{ total|pluralize }} waiting{% if shown < total %},
the first {{ shown }} shown{% endif %}. Replaying puts a message back on <code>{{ service }}.events</code> or
<code>{{ service }}.tasks</code>, for this service only. Looking at this page returns every message to the
queue (each look counts as one delivery of the dead-letter queue).</p>
{% if error %}<p class="errornote">{{ error }}</p>{% endif %}
<form method="post">{% csrf_token %}
<table id="result_list" style="width:100%">
<thead><tr><th></th><th>Id</th><th>Task</th><th>Event type</th><th>Reason</th><th>Died in</th>
<th>Deaths</th><th>First death</th><th>Replayed</th><th>Returns</th><th>Envelope / arguments</th></tr></thead>
<tbody>
{% for dead in dead_letters %}<tr>
<td>{% if can_change and dead.id %}<input type="checkbox" name="ids" value="{{ dead.id }}">{% endif %}</td>
<td><code>{{ dead.id }}</code></td><td>{{ dead.task }}</td><td>{{ dead.event_type|default:"" }}</td>
<td>{{ dead.reason }}</td><td>{{ dead.queue }}</td><td>{{ dead.death_count }}</td>
<td>{{ dead.first_death_at|default:"" }}</td><td>{{ dead.replayed }}</td><td>{{ dead.returns }}</td>
<td><details><summary>show</summary><pre>{{ dead.payload }}</pre></details></td>
</tr>{% empty %}<tr><td colspan="11">No dead letters.</td></tr>{% endfor %}
</tbody></table>
{% if can_change and dead_letters %}<div class="submit-row">
<button type="submit" name="action" value="replay_selected" class="default">Replay selected</button>
<button type="submit" name="action" value="replay_all"
 onclick="return confirm('Replay every dead letter of {{ service }}?')">Replay all</button>
<button type="submit" name="action" value="purge_selected">Discard selected&hellip;</button>
</div>{% endif %}
</form>
{% endblock %}
"""


def _admin_post(request, service: str) -> None:
    from django.contrib import messages

    action, ids = request.POST.get("action"), request.POST.getlist("ids")
    if action == "replay_all":
        count = replay(None, service=service)
        messages.success(request, f"{count} dead letters replayed.")
    elif action in ("replay_selected", "purge_selected") and not ids:
        messages.warning(request, "Select at least one message.")
    elif action == "replay_selected":
        count = replay(ids, service=service)
        messages.success(request, f"{count} of {len(ids)} selected dead letters replayed.")
    elif action == "purge_selected":
        count = purge(ids, service=service)
        messages.warning(request, f"{count} of {len(ids)} selected dead letters discarded.")
    else:
        messages.error(request, "Unknown action.")


def _purge_confirmation(request, site, service: str, ids: list[str]):
    """Discarding cannot be undone: the chosen ids, then Confirm (which POSTs them again) or Cancel."""
    from shared.admin_ui.confirm import confirmation_page

    return confirmation_page(
        request,
        admin_site=site,
        title="Discard dead letters",
        question=(
            f"Discard these {len(ids)} dead letters of {service} for good? They are removed from "
            f"{topology.dead_letter_queue_name(service)} and never delivered again (replaying is the "
            "safe choice)."
        ),
        items=ids,
        hidden=[*(("ids", message_id) for message_id in ids), ("action", "purge_selected")],
        confirm_label="Yes, discard them",
        cancel_url=request.path,
        parent_label="Dead letters",
    )


def dead_letters_view(request, site):
    """The admin page: list the service's dead letters; replay or discard the chosen ones (POST)."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponseRedirect
    from django.template import engines
    from django.template.response import TemplateResponse

    from shared.admin_ui.confirm import confirmed

    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    service = settings.SERVICE_NAME
    if request.method == "POST":
        if not request.user.has_perm(CHANGE_PERMISSION):
            raise PermissionDenied
        ids = request.POST.getlist("ids")
        if request.POST.get("action") == "purge_selected" and ids and not confirmed(request):
            return _purge_confirmation(request, site, service, ids)
        try:
            _admin_post(request, service)
        except Exception as exc:  # the broker is unreachable or refused: say so, keep the page usable
            logger.exception("dead-letter admin action failed")
            messages.error(request, f"The broker refused: {type(exc).__name__}: {exc}")
        return HttpResponseRedirect(request.path)
    rows, total, error = [], 0, ""
    try:
        total = depth(service=service)
        rows = peek(ADMIN_PAGE_LIMIT, service=service)
    except Exception as exc:
        logger.exception("dead letters could not be read")
        error = f"The broker could not be read: {type(exc).__name__}: {exc}"
    context = {
        **site.each_context(request),
        "title": f"Dead letters of {service}",
        "service": service,
        "queue": topology.dead_letter_queue_name(service),
        "dead_letters": rows,
        "total": total,
        "shown": len(rows),
        "error": error,
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
    }
    template = engines["django"].from_string(_ADMIN_TEMPLATE)
    return TemplateResponse(request, template, context)


ADMIN_URL_NAME = "messaging_deadletters"


def admin_urls(site) -> list:
    """The page's URL (`<admin>/messaging/dead-letters/`), behind the admin's login and staff check."""
    from django.urls import path

    def view(request):
        return dead_letters_view(request, site)

    return [path("messaging/dead-letters/", site.admin_view(view), name=ADMIN_URL_NAME)]


def install_admin(site) -> None:
    """Add the dead-letter page to an AdminSite, with a link under Messaging on the index. Idempotent.

    Called once from `shared/messaging/admin.py`: `deadletters.install_admin(admin.site)`.
    """
    if getattr(site, "_dead_letters_installed", False):
        return
    site._dead_letters_installed = True
    original_get_urls, original_get_app_list = site.get_urls, site.get_app_list

    def get_urls():
        # Before the admin's own patterns: its catch-all would otherwise answer first.
        return [*admin_urls(site), *original_get_urls()]

    def get_app_list(request, app_label=None):
        app_list = original_get_app_list(request, app_label)
        if request.user.has_perm(VIEW_PERMISSION):
            from django.urls import NoReverseMatch, reverse

            try:
                url = reverse(f"{site.name}:{ADMIN_URL_NAME}")
            except NoReverseMatch:  # this site's URLs are not the ones served
                return app_list
            link = {
                "name": "Dead letters",
                "object_name": "DeadLetter",
                "admin_url": url,
                "add_url": None,
                "view_only": not request.user.has_perm(CHANGE_PERMISSION),
                "perms": {"view": True},
            }
            for app in app_list:
                if app.get("app_label") == "messaging":
                    app["models"].append(link)
        return app_list

    site.get_urls = get_urls
    site.get_app_list = get_app_list

"""Dead-letter tooling: see parked messages without losing them, replay them to their own queue only.

Two set-ups. A probe service (`dlq_probe`) whose queues no worker consumes: messages are parked in its
dead-letter queue directly, so where a replay puts them can be counted exactly. And the real worker
of the test service, whose always-failing `ledger.poisoned` handler dead-letters for real.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import path
from kombu import Connection, Queue

from shared.messaging import deadletters, topology
from shared.messaging.events import publish_event
from shared.messaging.relay import DELIVER_TASK
from shared.testing import park_dead_letter, scrape, wait_until
from tests.conftest import SERVICE, worker_paused
from tests.ledger.models import Credit
from tests.ledger.services import account_credit

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "dlq_probe"
PROBE_DEAD_LETTER = f"{PROBE}.dead-letter"
PROBE_EVENTS = f"{PROBE}.events"
PROBE_TASKS = f"{PROBE}.tasks"
DEAD_LETTER = f"{SERVICE}.dead-letter"

# This module is also the URLconf of the admin tests: the admin site with the dead-letter page
# installed, exactly as shared/messaging/admin.py wires it.
deadletters.install_admin(admin.site)
urlpatterns = [path("admin/", admin.site.urls)]
ADMIN_PAGE = "/admin/messaging/dead-letters/"


def _depth(broker_url: str, name: str) -> int:
    with Connection(broker_url) as conn:
        _name, messages, _consumers = conn.default_channel.queue_declare(queue=name, passive=True)
        return messages


def _take_all(broker_url: str, name: str) -> list:
    """Remove and return every message in a queue (kombu messages, already acknowledged)."""
    taken = []
    with Connection(broker_url) as conn:
        queue = Queue(name, channel=conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            taken.append(message)
    return taken


@pytest.fixture
def probe(broker_url):
    """The probe service's queues, empty, removed afterwards."""
    names = (PROBE_DEAD_LETTER, PROBE_EVENTS, PROBE_TASKS)
    with Connection(broker_url) as conn:
        topology.declare(conn, PROBE, [], delivery_limit=2)
        for name in names:
            conn.default_channel.queue_purge(name)
    yield
    with Connection(broker_url) as conn:
        for name in names:
            conn.default_channel.queue_delete(name)


def park(
    broker_url: str, *, died_in: str, task: str = DELIVER_TASK, args=None, reason: str = "delivery_limit"
):
    """Put a Celery task message in the probe's dead-letter queue as RabbitMQ would have: with x-death."""
    task_id = str(uuid.uuid4())
    if args is None:
        args = ({"id": task_id, "type": "probe.failed", "version": 1, "data": {"n": 1}},)
    return park_dead_letter(
        broker_url, dead_letter_queue=PROBE_DEAD_LETTER, died_in=died_in, task=task, args=args, reason=reason,
        task_id=task_id, died_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )  # fmt: skip


# Peek


def test_peek_describes_each_message_and_leaves_every_one_in_place(probe, broker_url):
    event_id = park(broker_url, died_in=PROBE_EVENTS)
    task_id = park(broker_url, died_in=PROBE_TASKS, task="messaging.relay_outbox", args=(), reason="rejected")

    first = deadletters.peek(service=PROBE)
    second = deadletters.peek(service=PROBE)

    assert [dead.id for dead in first] == [event_id, task_id]
    assert [dead.id for dead in second] == [event_id, task_id]
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 2
    event, task = first
    assert (event.task, event.event_type, event.reason, event.queue) == (
        DELIVER_TASK,
        "probe.failed",
        "delivery_limit",
        PROBE_EVENTS,
    )
    assert event.death_count == 1
    assert event.first_death_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.envelope == {"id": event_id, "type": "probe.failed", "version": 1, "data": {"n": 1}}
    assert json.loads(event.payload)["data"] == {"n": 1}
    assert (task.task, task.event_type, task.reason, task.queue, task.envelope, task.args) == (
        "messaging.relay_outbox",
        None,
        "rejected",
        PROBE_TASKS,
        None,
        [],
    )


def test_peek_honours_its_limit(probe, broker_url):
    ids = [park(broker_url, died_in=PROBE_EVENTS) for _ in range(3)]

    assert [dead.id for dead in deadletters.peek(2, service=PROBE)] == ids[:2]
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 3


def test_peek_of_an_empty_queue_is_empty(probe):
    assert deadletters.peek(service=PROBE) == []
    assert deadletters.depth(service=PROBE) == 0


def test_a_body_that_is_not_a_task_is_still_listed_and_replayable(probe, broker_url):
    with Connection(broker_url) as conn:
        conn.Producer().publish(
            b"\xff not json",
            exchange="",
            routing_key=PROBE_DEAD_LETTER,
            headers={"id": "raw-1", "x-death": [{"queue": PROBE_EVENTS, "reason": "rejected", "count": 1}]},
            content_type="application/octet-stream",
            content_encoding="binary",
        )

    (dead,) = deadletters.peek(service=PROBE)
    assert (dead.id, dead.task, dead.args, dead.reason) == ("raw-1", None, [], "rejected")
    assert deadletters.replay(["raw-1"], service=PROBE) == 1
    (moved,) = _take_all(broker_url, PROBE_EVENTS)
    assert moved.body == b"\xff not json"


def test_a_deeply_nested_json_body_is_listed_not_a_crash(probe, broker_url):
    """A parked message can be anything: 5,000 levels of `[` used to exhaust the decoder's stack."""
    nested = b"[" * 5000 + b"]" * 5000
    with Connection(broker_url) as conn:
        conn.Producer().publish(
            nested, exchange="", routing_key=PROBE_DEAD_LETTER, content_type="application/json",
            content_encoding="utf-8",
            headers={"id": "deep-1", "x-death": [{"queue": PROBE_EVENTS, "reason": "rejected", "count": 1}]},
        )  # fmt: skip

    (dead,) = deadletters.peek(service=PROBE)

    assert (dead.id, dead.args, dead.reason) == ("deep-1", [], "rejected")


# Replay


def test_replay_moves_each_message_back_to_the_queue_it_died_in(probe, broker_url):
    event_id = park(broker_url, died_in=PROBE_EVENTS)
    task_id = park(broker_url, died_in=PROBE_TASKS, task="messaging.relay_outbox", args=())

    assert deadletters.replay(service=PROBE) == 2

    assert _depth(broker_url, PROBE_DEAD_LETTER) == 0
    (event,) = _take_all(broker_url, PROBE_EVENTS)
    (task,) = _take_all(broker_url, PROBE_TASKS)
    assert (event.headers["id"], event.headers["task"]) == (event_id, DELIVER_TASK)
    assert (task.headers["id"], task.headers["task"]) == (task_id, "messaging.relay_outbox")
    assert json.loads(event.body)[0][0]["id"] == event_id  # body untouched: [args, kwargs, embed]
    assert "x-death" not in event.headers
    assert event.headers["x-replayed"] == 1
    assert event.properties["delivery_mode"] == 2
    assert event.properties["correlation_id"] == event_id


def test_replay_of_chosen_ids_leaves_the_others(probe, broker_url):
    first, chosen, last = (park(broker_url, died_in=PROBE_EVENTS) for _ in range(3))

    assert deadletters.replay([chosen], service=PROBE) == 1

    assert [dead.id for dead in deadletters.peek(service=PROBE)] == [first, last]
    assert [message.headers["id"] for message in _take_all(broker_url, PROBE_EVENTS)] == [chosen]


def test_replay_of_an_unknown_id_moves_nothing(probe, broker_url):
    park(broker_url, died_in=PROBE_EVENTS)

    assert deadletters.replay([str(uuid.uuid4())], service=PROBE) == 0

    assert _depth(broker_url, PROBE_DEAD_LETTER) == 1
    assert _depth(broker_url, PROBE_EVENTS) == 0


def test_a_message_replayed_and_dead_lettered_again_counts_its_replays(probe, broker_url):
    task_id = park(broker_url, died_in=PROBE_EVENTS)
    deadletters.replay(service=PROBE)
    (replayed,) = _take_all(broker_url, PROBE_EVENTS)
    with Connection(broker_url) as conn:  # as the events queue would dead-letter it again
        conn.Producer().publish(
            replayed.body,
            exchange="",
            routing_key=PROBE_DEAD_LETTER,
            headers={**replayed.headers, "x-death": [{"queue": PROBE_EVENTS, "reason": "delivery_limit"}]},
            content_type=replayed.content_type,
            content_encoding=replayed.content_encoding,
        )

    (dead,) = deadletters.peek(service=PROBE)
    assert (dead.id, dead.replayed) == (task_id, 1)


def test_the_replay_queue_falls_back_on_the_task_when_x_death_names_no_own_queue():
    def dead(task, queue):
        return deadletters.DeadLetter(
            id="x", task=task, event_type=None, reason=None, queue=queue, death_count=0, first_death_at=None
        )

    assert deadletters.replay_queue(dead(DELIVER_TASK, None), "orders") == "orders.events"
    assert deadletters.replay_queue(dead("orders.order_expire", "elsewhere"), "orders") == "orders.tasks"
    assert deadletters.replay_queue(dead(DELIVER_TASK, "orders.tasks"), "orders") == "orders.tasks"
    # Never another service's queue, whatever the header says.
    assert deadletters.replay_queue(dead(DELIVER_TASK, "payments.events"), "orders") == "orders.events"


# Purge


def test_purge_discards_only_the_chosen_messages(probe, broker_url):
    kept, discarded = park(broker_url, died_in=PROBE_EVENTS), park(broker_url, died_in=PROBE_EVENTS)

    assert deadletters.purge([discarded], service=PROBE) == 1

    assert [dead.id for dead in deadletters.peek(service=PROBE)] == [kept]
    assert _depth(broker_url, PROBE_EVENTS) == 0


# The management command (run as the probe service)


@pytest.fixture
def as_probe(settings, probe):
    settings.SERVICE_NAME = PROBE


def run_command(*args) -> str:
    out = StringIO()
    call_command("deadletters", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_command_list_shows_each_dead_letter(as_probe, broker_url):
    assert run_command("list") == f"{PROBE_DEAD_LETTER} is empty.\n"
    event_id = park(broker_url, died_in=PROBE_EVENTS)

    table = run_command("list")

    header, row = table.splitlines()[1:]
    assert header.split() == [
        "id", "task", "event_type", "reason", "queue", "death_count", "first_death_at", "replayed", "returns",
    ]  # fmt: skip
    assert row.split() == [
        event_id, DELIVER_TASK, "probe.failed", "delivery_limit", PROBE_EVENTS, "1",
        "2026-01-02T03:04:05+00:00", "0", "0",
    ]  # fmt: skip
    (line,) = run_command("list", "--json").splitlines()
    assert json.loads(line)["envelope"]["id"] == event_id
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 1


def test_command_replay_by_id_and_all(as_probe, broker_url):
    first, second, third = (park(broker_url, died_in=PROBE_EVENTS) for _ in range(3))

    assert run_command("replay", "--id", first, "--id", third) == "2 dead letters replayed.\n"
    assert [dead.id for dead in deadletters.peek()] == [second]
    assert run_command("replay", "--all") == "1 dead letters replayed.\n"
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 0
    assert _depth(broker_url, PROBE_EVENTS) == 3


def test_command_replay_or_purge_needs_ids_or_all(as_probe, broker_url):
    park(broker_url, died_in=PROBE_EVENTS)

    for action in ("replay", "purge"):
        with pytest.raises(CommandError, match="--id"):
            run_command(action)
        with pytest.raises(CommandError, match="--id"):
            run_command(action, "--all", "--id", "x")
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 1


def test_command_names_a_missing_dead_letter_queue(settings):
    settings.SERVICE_NAME = "dlq_never_declared"

    with pytest.raises(CommandError, match=r"no queue 'dlq_never_declared\.dead-letter'.*setup_messaging"):
        run_command("list")


def test_command_purge_all(as_probe, broker_url):
    park(broker_url, died_in=PROBE_EVENTS)
    park(broker_url, died_in=PROBE_TASKS)

    assert run_command("purge", "--all") == "2 dead letters discarded.\n"
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 0


# The admin page (run as the probe service)

admin_urls = pytest.mark.urls(__name__)


@admin_urls
def test_admin_page_lists_the_dead_letters_and_the_index_links_to_it(admin_client, as_probe, broker_url):
    event_id = park(broker_url, died_in=PROBE_EVENTS)

    page = admin_client.get(ADMIN_PAGE)
    index = admin_client.get("/admin/")

    assert page.status_code == 200
    assert event_id in page.content.decode()
    assert [dead.id for dead in page.context["dead_letters"]] == [event_id]
    assert page.context["total"] == 1
    assert ADMIN_PAGE in index.content.decode()
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 1


@admin_urls
def test_admin_replays_the_selected_messages(admin_client, as_probe, broker_url):
    chosen, other = park(broker_url, died_in=PROBE_EVENTS), park(broker_url, died_in=PROBE_EVENTS)

    response = admin_client.post(ADMIN_PAGE, {"action": "replay_selected", "ids": [chosen]}, follow=True)

    assert [str(message) for message in response.context["messages"]] == [
        "1 of 1 selected dead letters replayed."
    ]
    assert [dead.id for dead in deadletters.peek()] == [other]
    assert [message.headers["id"] for message in _take_all(broker_url, PROBE_EVENTS)] == [chosen]


@admin_urls
def test_admin_replay_all_and_discard(admin_client, as_probe, broker_url):
    discarded = park(broker_url, died_in=PROBE_EVENTS)
    park(broker_url, died_in=PROBE_TASKS)

    admin_client.post(ADMIN_PAGE, {"action": "purge_selected", "ids": [discarded], "post": "yes"})
    response = admin_client.post(ADMIN_PAGE, {"action": "replay_all"}, follow=True)

    assert "1 dead letters replayed." in [str(message) for message in response.context["messages"]]
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 0
    assert (_depth(broker_url, PROBE_EVENTS), _depth(broker_url, PROBE_TASKS)) == (0, 1)


@admin_urls
def test_discarding_asks_for_a_confirmation_first_and_cancel_keeps_the_messages(
    admin_client, as_probe, broker_url
):
    chosen, other = park(broker_url, died_in=PROBE_EVENTS), park(broker_url, died_in=PROBE_EVENTS)

    page = admin_client.post(ADMIN_PAGE, {"action": "purge_selected", "ids": [chosen]})
    html = page.content.decode()

    assert page.status_code == 200
    assert page.templates[0].name == "admin_ui/confirm_action.html"
    assert chosen in html
    assert other not in html
    assert f'<input type="hidden" name="ids" value="{chosen}">' in html
    assert '<input type="hidden" name="post" value="yes">' in html
    assert f'href="{ADMIN_PAGE}" class="button cancel-link">Cancel' in html
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 2  # nothing discarded yet (Cancel just goes back)

    response = admin_client.post(
        ADMIN_PAGE, {"action": "purge_selected", "ids": [chosen], "post": "yes"}, follow=True
    )

    assert [str(message) for message in response.context["messages"]] == [
        "1 of 1 selected dead letters discarded."
    ]
    assert [dead.id for dead in deadletters.peek()] == [other]


@admin_urls
def test_the_page_hides_card_tokens_in_envelopes(admin_client, as_probe, broker_url):
    envelope = {
        "id": "e-1",
        "type": "order.created",
        "version": 1,
        "data": {"payment_token": "tok_visa_4242"},
    }
    park(broker_url, died_in=PROBE_EVENTS, args=(envelope,))

    html = admin_client.get(ADMIN_PAGE).content.decode()

    assert "tok_visa_4242" not in html
    assert "&quot;payment_token&quot;: &quot;(hidden)&quot;" in html


@admin_urls
def test_admin_page_needs_a_staff_login_and_the_permissions(client, django_user_model, as_probe, broker_url):
    park(broker_url, died_in=PROBE_EVENTS)
    assert client.get(ADMIN_PAGE).status_code == 302  # to the login page
    staff = django_user_model.objects.create_user(username="op", password="pw-op-12345", is_staff=True)
    client.force_login(staff)

    assert client.get(ADMIN_PAGE).status_code == 403
    assert client.post(ADMIN_PAGE, {"action": "replay_all"}).status_code == 403
    assert _depth(broker_url, PROBE_DEAD_LETTER) == 1


# With the real worker: a poison event dead-letters, is seen, replayed, and dead-letters again


def _publish_poison():
    with transaction.atomic():
        return publish_event("ledger.poisoned", {"note": "always fails"})


def _failures(worker, event_id: str) -> int:
    return sum("event handling failed" in line and event_id in line for line in worker.lines)


def _wait_failures(worker, event_id: str, count: int) -> None:
    """The worker's output shows `count` failed deliveries of the event (its log lines can lag)."""
    wait_until(lambda: _failures(worker, event_id) == count, timeout=60, message=f"{count} failures")


def _dead_letter_ids() -> list:
    return [dead.id for dead in deadletters.peek(500)]


def _wait_dead_lettered(event_id: str) -> deadletters.DeadLetter:
    def parked():
        return next((dead for dead in deadletters.peek(500) if dead.id == event_id), None)

    return wait_until(parked, timeout=60, message=f"{event_id} in {DEAD_LETTER}")


@pytest.fixture
def poisons(worker, broker_url):
    """Publish poison events; afterwards discard what they left in the dead-letter queue."""
    published: list[str] = []

    def publish() -> str:
        published.append(_publish_poison().id)
        return published[-1]

    yield publish
    for event_id in published:
        _wait_dead_lettered(event_id)  # not still cycling through the events queue
    deadletters.purge(published)


def test_peek_lists_a_poison_event_with_reason_delivery_limit_without_removing_it(
    poisons, worker, broker_url
):
    event_id = poisons()

    dead = _wait_dead_lettered(event_id)

    assert (dead.task, dead.event_type, dead.reason, dead.queue) == (
        DELIVER_TASK,
        "ledger.poisoned",
        "delivery_limit",
        f"{SERVICE}.events",
    )
    assert dead.envelope["id"] == event_id
    assert dead.envelope["data"] == {"note": "always fails"}
    assert dead.death_count == 1
    assert dead.first_death_at is not None
    depth = _depth(broker_url, DEAD_LETTER)
    assert event_id in _dead_letter_ids()
    assert _depth(broker_url, DEAD_LETTER) == depth
    _wait_failures(worker, event_id, settings.EVENTS_DELIVERY_LIMIT + 1)


def test_replay_sends_it_back_to_the_worker_and_it_is_dead_lettered_again(poisons, worker, broker_url):
    event_id = poisons()
    _wait_dead_lettered(event_id)
    cycle = settings.EVENTS_DELIVERY_LIMIT + 1
    _wait_failures(worker, event_id, cycle)

    with worker_paused(worker):
        parked = _depth(broker_url, DEAD_LETTER)
        assert deadletters.replay() == parked
        assert _depth(broker_url, DEAD_LETTER) == 0

    _wait_failures(worker, event_id, 2 * cycle)
    dead = _wait_dead_lettered(event_id)
    assert (dead.reason, dead.queue, dead.replayed) == ("delivery_limit", f"{SERVICE}.events", 1)
    assert _failures(worker, event_id) == 2 * cycle  # parked again, not looping


def test_replay_of_a_chosen_id_leaves_the_other_dead_letters(poisons, worker, broker_url):
    chosen, other = poisons(), poisons()
    _wait_dead_lettered(chosen)
    _wait_dead_lettered(other)
    cycle = settings.EVENTS_DELIVERY_LIMIT + 1
    _wait_failures(worker, other, cycle)

    with worker_paused(worker):
        assert deadletters.replay([chosen]) == 1
        remaining = _dead_letter_ids()
        assert other in remaining
        assert chosen not in remaining

    _wait_failures(worker, chosen, 2 * cycle)
    _wait_dead_lettered(chosen)
    assert _failures(worker, other) == cycle
    assert other in _dead_letter_ids()


# Messages a worker cannot run: rejected to the dead-letter queue, never acknowledged and lost


BAD_MESSAGES = {
    # id: (body, content type, encoding, headers beyond the id), what a broken or hostile publisher sends
    "bad-json-task": (b'{"not": json', "application/json", "utf-8", {"task": DELIVER_TASK}),
    "bad-json-no-task": (b'[{"id": ', "application/json", "utf-8", {}),
    "bad-encoding": (b"\xff\xfe[]", "application/json", "utf-8", {"task": DELIVER_TASK}),
    "pickle": (b"\x80\x04K\x01.", "application/x-python-serialize", "binary", {"task": DELIVER_TASK}),
    "unknown-task": (b"[[], {}, {}]", "application/json", "utf-8", {"task": "nobody.knows_this"}),
    "not-a-task": (b'"just a string"', "application/json", "utf-8", {}),
}


def test_every_message_a_worker_cannot_run_is_dead_lettered_with_a_reason_and_counted(worker, broker_url):
    """Celery's own consumer acknowledged an undecodable body (logged, then gone); others flow on."""
    before = _rejected(worker)
    with Connection(broker_url) as conn:
        producer = conn.Producer()
        for message_id, (body, content_type, encoding, headers) in BAD_MESSAGES.items():
            producer.publish(
                body, exchange="", routing_key=f"{SERVICE}.events", content_type=content_type,
                content_encoding=encoding, headers={"id": message_id, **headers}, message_id=message_id,
            )  # fmt: skip
    good = account_credit(account="after-bad-messages", amount=1)

    try:
        wait_until(
            lambda: Credit.objects.filter(event_id=good.id).exists(),
            timeout=60, message="the good event, queued behind them, handled",
        )  # fmt: skip
        parked = wait_until(lambda: _parked(BAD_MESSAGES), timeout=60, message="every bad message parked")
        assert {dead.reason for dead in parked} == {"rejected"}
        assert {dead.queue for dead in parked} == {f"{SERVICE}.events"}
        wait_until(lambda: _rejected(worker) - before >= len(BAD_MESSAGES), message="rejections counted")
        assert _rejected(worker) - before == len(BAD_MESSAGES)
    finally:
        deadletters.purge(list(BAD_MESSAGES))


def _parked(ids) -> list[deadletters.DeadLetter] | None:
    """The dead letters with these ids, once every one is there."""
    found = [dead for dead in deadletters.peek(500) if dead.id in ids]
    return found if len(found) == len(ids) else None


def _rejected(worker, reason: str | None = None) -> float:
    labels = {"reason": reason} if reason else {}
    return scrape(worker.metrics_url).value("celery_messages_rejected_total", **labels)


# Events a handler cannot read: dead-lettered before any handler runs, never half-applied


def _credit_envelope(event_id: str, **changes) -> dict:
    envelope = {
        "id": event_id, "type": "ledger.credited", "version": 1, "occurred_at": datetime.now(UTC).isoformat(),
        "source": "a-publisher", "correlation_id": event_id, "causation_id": None,
        "data": {"account": f"unreadable-{event_id}", "amount": 1},
    }  # fmt: skip
    envelope.update(changes)
    return {name: value for name, value in envelope.items() if value is not ...}


UNREADABLE_EVENTS = {
    # reason counted: envelope changes (`...` removes the field)
    "unsupported_event_version": {"version": 3},
    "malformed_event": {"version": "1"},
}
MISSING_FIELDS = ({"type": ...}, {"data": ...}, {"data": "a string"}, {"id": "not-a-uuid"})


def test_an_event_in_a_version_no_handler_reads_or_with_missing_fields_is_dead_lettered_not_applied(
    worker, broker_url
):
    from celery import current_app

    changes = [
        UNREADABLE_EVENTS["unsupported_event_version"],
        UNREADABLE_EVENTS["malformed_event"],
        *MISSING_FIELDS,
    ]
    envelopes = [_credit_envelope(str(uuid.uuid4()), **change) for change in changes]
    readable_v2 = _credit_envelope(str(uuid.uuid4()), version=2)
    readable_v2["data"]["amount"] = {"amount": 1, "currency": "EUR"}  # version 2's money object
    before = {reason: _rejected(worker, reason) for reason in UNREADABLE_EVENTS}
    message_ids = [f"unreadable-{n}" for n in range(len(envelopes))]
    with Connection(broker_url) as conn:
        producer = conn.Producer()
        for message_id, envelope in [*zip(message_ids, envelopes, strict=True), ("readable-v2", readable_v2)]:
            message = current_app.amqp.as_task_v2(message_id, DELIVER_TASK, args=(envelope,), kwargs={})
            producer.publish(
                message.body, exchange="", routing_key=f"{SERVICE}.events", headers=message.headers,
                serializer="json", **message.properties,
            )  # fmt: skip

    try:
        credited = wait_until(
            lambda: Credit.objects.filter(event_id=readable_v2["id"]).first(),
            timeout=60, message="the version 2 event handled",
        )  # fmt: skip
        assert credited.account == readable_v2["data"]["account"]
        parked = wait_until(lambda: _parked(message_ids), timeout=60, message="every unreadable event parked")
        assert {(dead.reason, dead.queue) for dead in parked} == {("rejected", f"{SERVICE}.events")}
        unreadable_ids = [envelope.get("id") for envelope in envelopes]
        assert not Credit.objects.filter(event_id__in=[i for i in unreadable_ids if _is_uuid(i)]).exists()
        wait_until(
            lambda: _rejected(worker, "malformed_event") - before["malformed_event"] >= len(envelopes) - 1,
            message="malformed events counted",
        )  # fmt: skip
        assert _rejected(worker, "unsupported_event_version") - before["unsupported_event_version"] == 1
        assert worker.output_contains(
            "ledger.credited version 3 is not read by tests.ledger.handlers.on_credited"
        )
    finally:
        deadletters.purge(message_ids)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# Events whose data breaks their schema (shared.contracts): dead-lettered before any handler runs


def test_an_event_whose_data_breaks_its_schema_is_dead_lettered_counted_and_never_applied(worker, broker_url):
    from celery import current_app

    invalid = _credit_envelope(str(uuid.uuid4()))
    invalid["data"]["amount"] = "lots"  # v1's amount is an integer
    valid = _credit_envelope(str(uuid.uuid4()))
    before = _rejected(worker, "invalid_event")
    with Connection(broker_url) as conn:
        producer = conn.Producer()
        for message_id, envelope in (("invalid-data", invalid), ("valid-data", valid)):
            message = current_app.amqp.as_task_v2(message_id, DELIVER_TASK, args=(envelope,), kwargs={})
            producer.publish(
                message.body, exchange="", routing_key=f"{SERVICE}.events", headers=message.headers,
                serializer="json", **message.properties,
            )  # fmt: skip

    try:
        wait_until(
            lambda: Credit.objects.filter(event_id=valid["id"]).exists(), timeout=60, message="valid handled"
        )
        [parked] = wait_until(lambda: _parked(["invalid-data"]), timeout=60, message="invalid event parked")
        assert (parked.reason, parked.queue, parked.death_count) == ("rejected", f"{SERVICE}.events", 1)
        assert parked.envelope == invalid  # parked as it came: fix the publisher, then replay it
        assert not Credit.objects.filter(event_id=invalid["id"]).exists()
        wait_until(lambda: _rejected(worker, "invalid_event") - before == 1, message="invalid event counted")
        assert worker.output_contains("ledger.credited version 1 breaks its schema: data.amount: 'lots'")
    finally:
        deadletters.purge(["invalid-data"])

"""Metrics of the shared package: Celery tasks (in a real worker, multiprocess mode), the inbox,
the outbox gauges and the circuit breakers, read back through the real exporters."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from shared import http
from shared.messaging import inbox, relay
from shared.messaging.events import new_event, publish_event
from shared.messaging.models import OutboxEvent
from shared.observability import multiproc
from shared.testing import MetricSamples, scrape, wait_until
from tests.ledger.models import Credit
from tests.ledger.services import account_credit
from tests.test_http import make_client

pytestmark = pytest.mark.django_db(transaction=True)

DELIVER = relay.DELIVER_TASK


def web_metrics(client) -> MetricSamples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return MetricSamples(response.content.decode())


def local(name: str, **labels) -> float:
    """A sample of this test process's own registry (0 when never recorded)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Celery task metrics, served by the worker's main process -------------------------------------------


def test_worker_counts_each_delivered_event_as_a_succeeded_task_with_its_runtime(worker):
    before = scrape(worker.metrics_url)

    event = account_credit(account="metrics-task", amount=3)
    wait_until(lambda: Credit.objects.filter(event_id=event.id).exists(), message="credit")

    after = wait_until(
        lambda: (
            (s := scrape(worker.metrics_url)).value("celery_task_runs_total", task=DELIVER, state="succeeded")
            > before.value("celery_task_runs_total", task=DELIVER, state="succeeded")
            and s
        ),
        message="worker metrics",
    )
    runs = after.value("celery_task_runs_total", task=DELIVER, state="succeeded")
    assert runs - before.value("celery_task_runs_total", task=DELIVER, state="succeeded") == 1
    assert (
        after.value("celery_task_runtime_seconds_count", task=DELIVER)
        - before.value("celery_task_runtime_seconds_count", task=DELIVER)
        == 1
    )
    assert after.value("celery_task_runtime_seconds_sum", task=DELIVER) > before.value(
        "celery_task_runtime_seconds_sum", task=DELIVER
    )
    assert after.value("celery_task_runs_total", task=DELIVER, state="failed") == before.value(
        "celery_task_runs_total", task=DELIVER, state="failed"
    )
    # The periodic sweep runs in the same worker and is counted under its own name.
    assert after.value("celery_task_runs_total", task="messaging.relay_outbox", state="succeeded") >= 1


def test_worker_metrics_directory_was_wiped_at_start(worker):
    samples = scrape(worker.metrics_url)
    # The stale file planted before the start would make the multiprocess merge fail or lie.
    assert "left by an earlier run" not in samples.text
    assert samples.has("celery_task_runs_total")


def test_a_poison_event_is_counted_as_rejected(worker, observe):
    before = scrape(worker.metrics_url).value("celery_task_runs_total", task=DELIVER, state="rejected")

    with transaction.atomic():
        publish_event("ledger.poisoned", {"account": "poison"})

    wait_until(
        lambda: (
            scrape(worker.metrics_url).value("celery_task_runs_total", task=DELIVER, state="rejected")
            > before
        ),
        timeout=30,
        message="a rejected run",
    )


def test_a_redelivered_event_is_counted_as_a_skipped_duplicate_by_the_worker(worker):
    labels = {"event_type": "ledger.credited"}
    event = account_credit(account="metrics-duplicate", amount=2)
    wait_until(lambda: Credit.objects.filter(event_id=event.id).exists(), message="credit")
    before = scrape(worker.metrics_url).value("inbox_duplicates_skipped_total", **labels)

    # The relay publishes the same row again (as after a crash between publish and mark).
    OutboxEvent.objects.filter(id=event.id).update(published_at=None)
    relay.sweep()

    wait_until(
        lambda: scrape(worker.metrics_url).value("inbox_duplicates_skipped_total", **labels) > before,
        message="duplicate counted",
    )
    assert scrape(worker.metrics_url).value("inbox_duplicates_skipped_total", **labels) - before == 1
    assert Credit.objects.filter(event_id=event.id).count() == 1


# --- the inbox, in this process -------------------------------------------------------------------------


def test_inbox_counts_each_skipped_duplicate_by_event_type():
    event = new_event("ledger.audited", {"n": 1})
    handled = []
    before = local("inbox_duplicates_skipped_total", event_type="ledger.audited")

    assert inbox.handle_once("tests.metrics.consumer", handled.append, event) is True
    assert inbox.handle_once("tests.metrics.consumer", handled.append, event) is False
    assert inbox.handle_once("tests.metrics.consumer", handled.append, event) is False

    assert len(handled) == 1
    assert local("inbox_duplicates_skipped_total", event_type="ledger.audited") - before == 2


# --- outbox gauges, read from the database at scrape time -----------------------------------------------


def test_outbox_gauges_count_pending_rows_and_the_oldest_ones_age(client):
    # Uncommitted rows: visible to this connection (the view runs on it), never to the worker's sweep.
    with transaction.atomic():
        before = web_metrics(client)
        rows = [
            OutboxEvent.objects.create(event_type="ledger.credited", envelope={"id": str(uuid.uuid4())})
            for _ in range(2)
        ]
        OutboxEvent.objects.filter(id=rows[0].id).update(created_at=timezone.now() - timedelta(seconds=90))
        after = web_metrics(client)
        transaction.set_rollback(True)

    assert after.value("outbox_pending_rows") - before.value("outbox_pending_rows") == 2
    assert after.value("outbox_oldest_pending_age_seconds") >= 90


def test_outbox_gauges_are_zero_when_nothing_is_pending(client):
    with transaction.atomic():
        OutboxEvent.objects.filter(published_at__isnull=True).update(published_at=timezone.now())
        samples = web_metrics(client)
        transaction.set_rollback(True)

    assert samples.has("outbox_pending_rows") and samples.value("outbox_pending_rows") == 0
    assert samples.has("outbox_oldest_pending_age_seconds")
    assert samples.value("outbox_oldest_pending_age_seconds") == 0


def test_metrics_still_answer_when_the_database_fails(client):
    with transaction.atomic():
        # A failed statement outside a savepoint aborts the transaction: every later query fails,
        # as when the database has gone away under a running process.
        with pytest.raises(ProgrammingError), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
        samples = web_metrics(client)
        transaction.set_rollback(True)

    assert not samples.has("outbox_pending_rows")  # skipped and logged, not an error
    assert samples.has("django_http_requests_before_middlewares_total")  # the rest is still there


# --- circuit breakers ------------------------------------------------------------------------------------


@pytest.fixture
def breaker_name(settings, redis_client):
    name = f"test-metrics-{uuid.uuid4().hex[:8]}"
    settings.CIRCUIT_BREAKER_DOWNSTREAMS = [name]  # as a service's settings name its downstreams
    return name


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    yield client
    for key in client.scan_iter("breaker:test-metrics-*"):
        client.delete(key)


def transitions(name: str, to: str) -> float:
    return local("circuit_breaker_transitions_total", downstream=name, to=to)


def test_breaker_state_and_transitions_are_exported(client, downstream, redis_client, breaker_name):
    closed = web_metrics(client)
    assert closed.value("circuit_breaker_state", downstream=breaker_name) == 0
    caller = make_client(downstream, redis_client, name=breaker_name, fail_max=2, reset_timeout=1.0)
    other_process = make_client(downstream, redis_client, name=breaker_name, fail_max=2, reset_timeout=1.0)

    downstream.default = "fail"
    for _ in range(2):
        with pytest.raises(http.DownstreamUnavailable):
            caller.get("/thing")
    assert caller.breaker.current_state == "open"
    # Another breaker on the same shared state notices the change: that is not a second transition.
    with pytest.raises(http.DownstreamUnavailable):
        other_process.get("/thing")

    assert web_metrics(client).value("circuit_breaker_state", downstream=breaker_name) == 2
    assert transitions(breaker_name, "open") == 1

    time.sleep(1.1)  # past the reset timeout: the next call is a trial (half-open), and it succeeds
    downstream.default = "ok"
    assert caller.get("/thing").status_code == 200

    assert web_metrics(client).value("circuit_breaker_state", downstream=breaker_name) == 0
    assert transitions(breaker_name, "half-open") == 1
    assert transitions(breaker_name, "closed") == 1
    assert transitions(breaker_name, "open") == 1


def test_breaker_state_shows_half_open(client, redis_client, breaker_name):
    redis_client.set(f"breaker:{breaker_name}:pybreaker:state", "half-open")
    assert web_metrics(client).value("circuit_breaker_state", downstream=breaker_name) == 1


# --- the launcher ----------------------------------------------------------------------------------------


def test_multiproc_reset_empties_the_directory_and_keeps_it(tmp_path):
    directory = tmp_path / "metrics"
    (directory / "nested").mkdir(parents=True)
    (directory / "counter_1.db").write_bytes(b"x")
    (directory / "nested" / "gauge_live_2.db").write_bytes(b"y")

    multiproc.reset_directory(directory)

    assert directory.is_dir() and list(directory.iterdir()) == []
    multiproc.reset_directory(tmp_path / "created")
    assert (tmp_path / "created").is_dir()


def test_multiproc_without_a_command_is_a_usage_error():
    assert multiproc.main([]) == 2

"""Fixtures shared by notifications' tests: e-mail backends, queued sends, handling events."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils.module_loading import import_string

from notifications import services, tasks
from notifications.tests.helpers import HANDLERS, SUBSCRIBED
from shared.messaging import inbox
from shared.testing import relayed_event_ids  # noqa: F401 (autouse fixture)

LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FAILING_BACKEND = "notifications.tests.helpers.FailingEmailBackend"


@pytest.fixture(autouse=True)
def locmem_email(settings):
    """E-mails go to django.core.mail.outbox, never to the developer's mail directory."""
    settings.EMAIL_BACKEND = LOCMEM_BACKEND
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    settings.NOTIFICATION_RETRY_SECONDS = 5.0


@pytest.fixture(autouse=True)
def queued_sends(monkeypatch):
    """What `notifications.notification_send` was queued with after commit (its args), instead of the broker.

    Tests run a queued send by calling the task function itself: the code path a worker runs.
    """
    queued: list[tuple] = []

    def record(task_name: str, *args) -> None:
        assert task_name == tasks.notification_send.name, f"no such task: {task_name!r}"
        transaction.on_commit(lambda: queued.append(args))

    monkeypatch.setattr(services, "run_task_after_commit", record)
    return queued


@pytest.fixture
def run_queued_sends(queued_sends):
    """Run every queued send (as the worker would) and return their results."""

    def run() -> list[bool]:
        results = [tasks.notification_send(*args) for args in queued_sends]
        queued_sends.clear()
        return results

    return run


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """`deliver(event)`: handle it exactly like the worker (inbox transaction), then run on_commit."""

    def _deliver(event) -> bool:
        handler_name, _kind = SUBSCRIBED[event.type]
        path = f"{HANDLERS}.{handler_name}"
        with django_capture_on_commit_callbacks(execute=True):
            return inbox.handle_once(path, import_string(path), event)

    return _deliver

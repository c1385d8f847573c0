"""A minimal service used to test the shared package against the real broker, database and cache.

It publishes and consumes its own `ledger.*` events, so a test can watch an event go through the
outbox, the broker, a real Celery worker and the inbox.
"""

import os
from pathlib import Path

# Small numbers keep the dead-letter and sweep tests fast; the worker subprocess inherits them.
os.environ.setdefault("EVENTS_DELIVERY_LIMIT", "2")
os.environ.setdefault("EVENTS_HANDLER_ATTEMPTS", "1")
os.environ.setdefault("OUTBOX_SWEEP_SECONDS", "0.5")

from shared.settings import service_settings

globals().update(
    service_settings(
        base_dir=Path(__file__).resolve().parent.parent,
        service="shared_tests",
        apps=["tests.ledger"],
        subscriptions={
            "ledger.credited": "tests.ledger.handlers.on_credited",
            "ledger.poisoned": "tests.ledger.handlers.on_poisoned",
        },
        extra={
            "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
            "EXTRA_EVENT_CONTRACTS": ["tests.ledger.contracts.CONTRACTS"],
        },
    ),
    ROOT_URLCONF="tests.urls",  # the test service's URLs instead of a config package's
)

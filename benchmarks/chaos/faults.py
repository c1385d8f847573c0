"""The faults, by name: which ones the chaos suite runs (the core set in CI, every one with --full), and
`inject`, which causes one and heals it (processes.py, messages.py and infrastructure.py hold how).

Redis, RabbitMQ and Postgres are this machine's own, shared by every instance on it: one fault at a
time, with no other platform under load. Each fault heals itself before `inject` returns.
"""

from __future__ import annotations

import os
import signal

from benchmarks.chaos import infrastructure, messages, processes
from devtools import instance

# One per kind of fault: the chaos suite's core set, in CI.
CORE_FAULTS = (
    "none",
    "redis-pause",
    "broker-stop",
    "postgres-restart",
    "kill-workers",
    "kill-orders-web",
    "bad-messages",
    "redeliver",
    "broker-link",
)
# The rest of the full set (`manage_all.py test chaos --full`): heavier versions of the same kinds, and
# the slow ones.
EXTRA_FAULTS = (
    "redis-stop", "broker-restart", "kill-webs", "kill-orders-web-thrice", "kill-orders-web-after-commit",
    "long-transaction", "consumer-timeout", "provider-link",
)  # fmt: skip
# These need the platform wired through fault proxies (tests/chaos does it).
LINK_FAULTS = ("broker-link", "provider-link", "kill-orders-web-after-commit")
FAULTS = CORE_FAULTS + EXTRA_FAULTS


def inject(fault: str, seconds: float, platform: instance.Platform, links: dict | None = None) -> dict:
    """Cause `fault` for about `seconds`, heal it, and return what the checks need to know about it.
    `links` are the fault proxies the platform reaches the broker and the provider through, if any."""
    if fault in ("broker-link", "provider-link"):
        infrastructure.disturb_link((links or {})[fault.removesuffix("-link")], seconds)
    elif fault == "kill-orders-web-after-commit":
        processes.kill_after_commit(platform, (links or {})["broker"], seconds)
    elif fault == "redis-pause":
        infrastructure.pause_redis(platform, seconds)
    elif fault == "redis-stop":
        infrastructure.stop_redis(platform, seconds)
    elif fault == "broker-stop":
        infrastructure.stop_broker_app(seconds)
    elif fault == "broker-restart":
        infrastructure.restart_broker_node(seconds)
    elif fault == "postgres-restart":
        infrastructure.restart_postgres()
    elif fault in ("kill-workers", "kill-orders-web", "kill-webs"):
        wanted = {"kill-workers": "-worker", "kill-orders-web": "orders-web", "kill-webs": "-web"}[fault]
        for pid in processes.pids(platform, wanted):
            os.kill(pid, signal.SIGKILL)
    elif fault == "kill-orders-web-thrice":
        return {"kills": processes.kill_repeatedly(platform, "orders-web", seconds, times=3)}
    elif fault == "long-transaction":
        return {"held event": messages.hold_a_transaction_while_relays_race(platform, seconds)}
    elif fault == "consumer-timeout":
        timeouts = infrastructure.hold_deliveries_past_the_consumer_timeout(platform, "payments")
        return {"deliveries timed out by the broker": timeouts}
    elif fault == "bad-messages":
        return {"bad messages": messages.publish_bad_messages(platform)}
    elif fault == "redeliver":
        return {"redelivered": messages.redeliver_held_events(platform, seconds)}
    elif fault != "none":
        raise ValueError(f"unknown fault {fault!r}")
    return {}

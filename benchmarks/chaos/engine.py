"""One scenario: load, the fault in the middle, heal, wait for quiet, then read every invariant."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from benchmarks.chaos import faults, invariants, messages
from benchmarks.chaos.load import Run, Scenario
from devtools import instance

QUIET_TIMEOUT = 240.0
# Orders sent this long after the fault healed must all be accepted: the platform has recovered (a web
# server killed at the fault's start is long restarted by then).
RECOVERY_SECONDS = 3.0
DEAD_LETTER_TIMEOUT = 30.0
NOTIFICATIONS = "notifications"


@dataclass
class Report:
    """What clients saw during the fault, how long the platform took to drain after it, and the
    invariants once it was quiet."""

    fault: str
    orders: int
    answers: dict[str, int]
    answers_after_recovery: dict[str, int]  # orders sent from RECOVERY_SECONDS after the fault healed
    post_p50_ms_during_fault: int
    post_p99_ms_during_fault: int
    post_p99_ms_whole_run: int
    drain_seconds: float  # from the later of the last order sent and the fault healed, to quiet
    confirmed: int
    committed_without_202: int  # orders created whose client saw another answer (or none)
    retry_after_of_503s: list[str]
    fault_facts: dict  # what the fault itself observed (messages held, kills, timeouts...)
    invariants: dict[str, bool]
    problems: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return all(self.invariants.values())


def run_scenario(
    platform: instance.Platform,
    scenario: Scenario,
    tokens: list[str],
    products: list[str],
    links: dict | None = None,
) -> Report:
    """`links`: the fault proxies between the platform and the broker and the provider, when it runs
    through them (needed by the link faults only)."""
    run = Run(platform)
    before = invariants.stock_totals(run, products)
    invariants.take_dead_letters(platform)  # what earlier runs left is not this run's
    since = _database_now(run)
    started = time.monotonic()
    with ThreadPoolExecutor(1) as fault_thread:
        fault = fault_thread.submit(_at, started + scenario.fault_at, scenario, platform, links)
        _load(run, scenario, tokens, products, started)
        facts = fault.result()  # a fault that could not be injected or healed fails the scenario here
    accepted = run.accepted
    # Every order the scenario created, those whose client got no 202 too (a web server killed between
    # its commit and its answer): each must end like any other.
    placed = invariants.orders_since(run, since)
    healed = started + max(scenario.duration, scenario.healed_at)
    statuses, drain_seconds = wait_for_quiet(run, placed, since=healed)
    checks = _checks(run, scenario, facts, placed, statuses, since, before, products)
    during = [a.seconds for a in run.answers if scenario.fault_at <= a.sent_at < scenario.healed_at]
    recovered = scenario.healed_at + RECOVERY_SECONDS
    return Report(
        fault=scenario.fault,
        orders=len(run.answers),
        answers=_count(answer.status for answer in run.answers),
        answers_after_recovery=_count(answer.status for answer in run.answers if answer.sent_at >= recovered),
        post_p50_ms_during_fault=percentile_ms(during, 0.5),
        post_p99_ms_during_fault=percentile_ms(during, 0.99),
        post_p99_ms_whole_run=percentile_ms([a.seconds for a in run.answers], 0.99),
        drain_seconds=round(drain_seconds, 1),
        confirmed=sum(status == "confirmed" for status in statuses.values()),
        committed_without_202=len(set(placed) - set(accepted)),
        retry_after_of_503s=sorted({str(a.retry_after) for a in run.answers if a.status == 503}),
        fault_facts=facts,
        invariants={name: not problems for name, problems in checks.items()},
        problems=[problem for problems in checks.values() for problem in problems[:5]],
    )


def _checks(run, scenario, facts, placed, statuses, since, before, products) -> dict[str, list[str]]:
    consumed = messages.subscriptions(run.platform)
    events = invariants.scenario_events(run, since)
    expected_dead = facts.get("bad messages", {})
    parked = collect_dead_letters(run.platform, expected_dead)
    checks = {
        "every order terminal": invariants.unfinished_orders(statuses, placed),
        "stock conserved, none reserved": invariants.stock_problems(
            before, invariants.stock_totals(run, products)
        ),
        "one captured payment per confirmed order": invariants.payment_problems(run, placed),
        "at most one charge per order at the provider": invariants.provider_problems(run, placed),
        "every queue consumed again": invariants.consumer_problems(run.platform),
        "no outbox row pending": [
            f"{s}: {n} unpublished" for s, n in invariants.pending_outbox(run).items() if n
        ],
        "dead letters as expected": []
        if parked == expected_dead
        else [f"dead letters {parked}, sent {expected_dead}"],
        "every event in each consumer's inbox once": invariants.inbox_problems(run, events, consumed),
        "one e-mail per event that warrants one": invariants.email_problems(
            run, events, consumed[NOTIFICATIONS], since
        ),
    }
    if scenario.fault == "redeliver":
        checks["held events delivered three times"] = invariants.redelivery_problems(
            run, events, facts["redelivered"]
        )
    if scenario.fault == "long-transaction":
        checks["the late event published once committed"] = invariants.late_event_problems(
            run, facts["held event"]
        )
    return checks


def _count(statuses) -> dict[str, int]:
    return dict(Counter(str(status) for status in statuses))


def _at(when: float, scenario: Scenario, platform: instance.Platform, links: dict | None) -> dict:
    time.sleep(max(0.0, when - time.monotonic()))
    return faults.inject(scenario.fault, scenario.fault_seconds, platform, links)


def _load(run: Run, scenario: Scenario, tokens: list[str], products: list[str], started: float) -> None:
    with ThreadPoolExecutor(64) as pool:
        index = 0
        while time.monotonic() - started < scenario.duration:
            pool.submit(run.place, index, tokens, products, started)
            index += 1
            time.sleep(max(0.0, index / scenario.rate - (time.monotonic() - started)))


def _database_now(run: Run) -> datetime:
    with run.database("orders") as db:
        return db.execute("SELECT now()").fetchone()[0]


def wait_for_quiet(run: Run, order_ids: list[str], *, since: float) -> tuple[dict[str, str], float]:
    """Every accepted order's status once all are terminal, no outbox row and no e-mail waits and every
    service's queues are drained, with the seconds from `since` to then (or to the timeout)."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    while True:
        statuses = invariants.order_statuses(run, order_ids)
        quiet = (
            not invariants.unfinished_orders(statuses, order_ids)
            and not any(invariants.pending_outbox(run).values())
            and not invariants.pending_notifications(run)
            and not invariants.queued_messages(run.platform)
        )
        if quiet or time.monotonic() > deadline:
            return statuses, time.monotonic() - since
        time.sleep(0.5)


def collect_dead_letters(platform: instance.Platform, expected: dict[str, list[str]]) -> dict[str, list[str]]:
    """What the dead-letter queues hold (taken out), waiting up to DEAD_LETTER_TIMEOUT for the expected."""
    parked: dict[str, list[str]] = {}
    deadline = time.monotonic() + DEAD_LETTER_TIMEOUT
    while True:
        for service, ids in invariants.take_dead_letters(platform).items():
            parked[service] = sorted(parked.get(service, []) + ids)
        if all(set(ids) <= set(parked.get(service, [])) for service, ids in expected.items()):
            return parked
        if time.monotonic() > deadline:
            return parked
        time.sleep(0.5)


def percentile_ms(values: list[float], fraction: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000)

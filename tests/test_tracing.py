"""One order, followed the way an operator would: its log lines across every process by its correlation
id (`manage_all.py logs --correlation`), and its trace across the saga (spans written to files by every
service of the e2e platform, which the session fixture starts with OTEL_TRACES_EXPORTER=file)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from shared.testing import wait_until
from tests.conftest import INSTANCE, ROOT
from tests.shop import SHIPPING, Shop

TRACES_DIR = ROOT / "var" / INSTANCE / "traces"
SAGA_SERVICES = {"orders", "catalog", "inventory", "payments", "notifications"}


@dataclass(frozen=True)
class Journey:
    request_id: str
    order_id: str


@pytest.fixture(scope="module")
def journey(platform) -> Journey:
    """One confirmed order, placed through the gateway with a request id of our choosing."""
    shop = Shop(platform)
    token = shop.new_customer()
    product_id = shop.new_product(stock=2)
    request_id = f"journey-{uuid.uuid4().hex}"
    answer = shop.http.post(
        platform.gateway_url("/api/v1/orders/"),
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id,
                 "Idempotency-Key": request_id},
        json={"items": [{"product_id": product_id, "quantity": 1}], "payment_token": "tok_visa",
              "shipping_address": SHIPPING},
        timeout=15,
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    order = shop.wait_for_terminal(token, answer.json()["id"])
    assert order["status"] == "confirmed", order
    return Journey(request_id, order["id"])


def _correlated_records(platform, request_id: str) -> list[dict]:
    shown = platform.manage_all("logs", "--correlation", request_id, "--json", timeout=60)
    assert shown.returncode in (0, 1), shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _services_of(records: list[dict]) -> set[str]:
    return {record.get("service") or "gateway" for record in records}


def test_one_correlation_id_finds_the_orders_lines_in_every_service_in_time_order(platform, journey):
    # The last services act a moment after the order is confirmed (e-mail, stock commit): wait for them.
    records = wait_until(
        lambda: (
            (found := _correlated_records(platform, journey.request_id))
            and _services_of(found) >= {*SAGA_SERVICES, "gateway"}
            and found
        ),
        timeout=30,
        interval=1,
        message=f"log lines of {journey.request_id} from {sorted(SAGA_SERVICES)} and the gateway",
    )
    assert all(journey.request_id in (r.get("correlation_id"), r.get("request_id")) for r in records)
    times = [_time(record["time"]) for record in records]
    assert times == sorted(times)
    assert any(r.get("order_id") == journey.order_id and r.get("service") == "inventory" for r in records)

    # The readable form: one line per record, time first, then the process that wrote it.
    shown = platform.manage_all("logs", "--correlation", journey.request_id, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) >= len(records)  # a late line (a stock commit) may have come in since
    printed_times = [_time(line.split()[0]) for line in lines]
    assert printed_times == sorted(printed_times)
    processes = {line.split()[1] for line in lines}
    workers = {"inventory-worker", "payments-worker", "notifications-worker"}
    assert {"gateway", "orders-web", *workers} <= processes

    unknown = platform.manage_all("logs", "--correlation", f"nobody-{uuid.uuid4().hex}", timeout=60)
    assert unknown.returncode == 1 and unknown.stdout == "" and "no log line" in unknown.stderr


def _spans_of_trace(trace_id: str) -> dict[str, dict]:
    """Spans of one trace from every process's trace file, by span id."""
    spans = {}
    for path in Path(TRACES_DIR).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if f'"0x{trace_id}"' in line:
                span = json.loads(line)
                spans[span["context"]["span_id"]] = span
    return spans


def _service(span: dict) -> str:
    return span["resource"]["attributes"]["service.name"]


def _complete(spans: dict[str, dict]) -> bool:
    """Every parent written (a parent ends, and is written, after its children)."""
    names = {(_service(s), s["name"]) for s in spans.values()}
    parents_known = all(s["parent_id"] is None or s["parent_id"] in spans for s in spans.values())
    return ("orders", "payment.succeeded process") in names and parents_known


def _path_to_root(spans: dict[str, dict], span: dict) -> list[dict]:
    path = [span]
    while path[-1]["parent_id"] is not None:
        path.append(spans[path[-1]["parent_id"]])
    return path[::-1]


def test_one_order_is_one_trace_from_orders_through_inventory_and_payments_back_to_orders(platform, journey):
    records = _correlated_records(platform, journey.request_id)
    trace_ids = {r["trace_id"] for r in records if r.get("trace_id")}
    assert len(trace_ids) == 1, f"the order's log lines name {len(trace_ids)} traces: {trace_ids}"
    [trace_id] = trace_ids

    spans = wait_until(
        lambda: _complete(found := _spans_of_trace(trace_id)) and found,
        timeout=30,
        interval=0.5,
        message=f"the spans of trace {trace_id}",
    )
    assert {"orders", "catalog", "inventory", "payments"} <= {_service(s) for s in spans.values()}
    assert all(s["context"]["trace_id"] == f"0x{trace_id}" for s in spans.values())
    [root] = [s for s in spans.values() if s["parent_id"] is None]
    assert _service(root) == "orders" and root["kind"] == "SpanKind.SERVER"

    # The saga's path: each hop's span descends from the one before, and starts after it.
    confirmed = next(
        s for s in spans.values() if (_service(s), s["name"]) == ("orders", "payment.succeeded process")
    )
    path = _path_to_root(spans, confirmed)
    hops = [_service(s) for i, s in enumerate(path) if i == 0 or _service(path[i - 1]) != _service(s)]
    assert hops == ["orders", "inventory", "payments", "orders"]
    starts = [_time(s["start_time"]) for s in path]
    assert starts == sorted(starts)
    processed = [s["name"] for s in path if s["name"].endswith(" process")]
    assert processed == ["order.created process", "inventory.reserved process", "payment.succeeded process"]

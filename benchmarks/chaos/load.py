"""The scenario and the load: orders placed at a steady rate through the gateway, what each client saw."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import psycopg
import requests

from devtools import instance

SHIPPING = {"line1": "1 Fault Street", "city": "Chaos", "postal_code": "00000", "country": "US"}
CARDS = ["tok_visa"] * 4 + ["tok_chargeDeclined"]  # one in five declined: compensations run too


def database(platform: instance.Platform, service: str, *, autocommit: bool = True) -> psycopg.Connection:
    """A connection to a service's database of the instance, as the machine's Postgres superuser."""
    endpoints = platform.endpoints
    return psycopg.connect(
        host=endpoints.postgres_host, port=endpoints.postgres_port, user="root",
        dbname=platform.instance.database(service), autocommit=autocommit,
    )  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    fault: str
    rate: float = 6.0  # orders per second, open loop
    duration: float = 40.0  # seconds of load
    fault_at: float = 10.0  # seconds into the load
    fault_seconds: float = 15.0

    @property
    def healed_at(self) -> float:
        return self.fault_at + self.fault_seconds


@dataclass(frozen=True)
class Answer:
    """One POST /api/v1/orders/ as its client saw it."""

    sent_at: float  # seconds since the load started
    seconds: float
    status: int | str  # the HTTP status, or the exception's name when there was no answer
    order_id: str
    retry_after: str | None


class Run:
    """One scenario's clients (HTTP through the gateway) and its view of the databases."""

    def __init__(self, platform: instance.Platform) -> None:
        self.platform = platform
        self.gateway = f"http://127.0.0.1:{platform.instance.port(platform.topology.gateway.port)}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        self.answers: list[Answer] = []
        self.lock = threading.Lock()

    def database(self, service: str) -> psycopg.Connection:
        return database(self.platform, service)

    def sandbox_url(self, name: str) -> str:
        sandbox = next(sandbox for sandbox in self.platform.topology.sandboxes if sandbox.name == name)
        return f"http://127.0.0.1:{self.platform.instance.port(sandbox.port)}"

    def login(self) -> str:
        answer = self.http.post(
            f"{self.gateway}/api/v1/auth/token/",
            json={"email": "customer@example.com", "password": "customer-demo-pass-1"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access"]

    def products(self, token: str, count: int) -> list[str]:
        answer = self.http.get(
            f"{self.gateway}/api/v1/products/?page_size={count}",
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
        return [product["id"] for product in answer.json()["results"]]

    def place(self, index: int, tokens: list[str], products: list[str], started: float) -> None:
        body = {
            "items": [{"product_id": products[index % len(products)], "quantity": 1}],
            "payment_token": CARDS[index % len(CARDS)],
            "shipping_address": SHIPPING,
        }
        token = tokens[index % len(tokens)]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        sent = time.monotonic()
        retry_after = None
        try:
            answer = self.http.post(f"{self.gateway}/api/v1/orders/", json=body, headers=headers, timeout=60)
            status, order_id = answer.status_code, answer.json().get("id", "") if answer.ok else ""
            retry_after = answer.headers.get("Retry-After")
        except requests.RequestException as exc:
            status, order_id = type(exc).__name__, ""
        with self.lock:
            self.answers.append(
                Answer(sent - started, time.monotonic() - sent, status, order_id, retry_after)
            )

    @property
    def accepted(self) -> list[str]:
        return [answer.order_id for answer in self.answers if answer.status == 202]

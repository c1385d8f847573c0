"""The read replica as clients meet it, through the gateway, against the e2e instance's real streaming
standby (devtools.replica; shared.replica; docs/data.md "Read replica"): `up` runs it and `status` shows
it; a customer reads their own new order at once while replay on the standby is paused, when another
reader is served the replica's stale copy until the lag passes the limit (REPLICA_MAX_LAG_SECONDS, 4 s
here) and the primary after; with the standby stopped, listings answer from the primary, and go back to
the standby once it runs again. Each answer names where it read (`X-Read-From`, on for this instance)."""

from __future__ import annotations

import contextlib
import itertools
import os
import time

import psycopg
import pytest
import requests

from shared.testing import scrape, wait_until
from tests.conftest import REPLICA
from tests.shop import SHIPPING, Shop

PROGRAM = "postgres-replica"
MAX_LAG = float(REPLICA["REPLICA_MAX_LAG_SECONDS"])
FROM_REPLICA = "replica"
distinct = itertools.count(1)  # catalog caches pages by URL: a new one each time reads the database


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="module")
def standby_port(platform) -> int:
    port = platform.model("platform.replica and platform.replica.port")
    assert port, "the e2e instance runs no read replica: see `manage_all.py status`"
    return port


def admin(port: int | None = None) -> psycopg.Connection:
    """The Postgres superuser `manage_all.py` provisions with, on the primary or the standby."""
    url = os.environ.get("PG_ADMIN_URL", "postgresql://root@127.0.0.1:5432/postgres")
    return psycopg.connect(url, autocommit=True, **({"host": "127.0.0.1", "port": port} if port else {}))


def replayed_everything(standby_port: int) -> bool:
    with admin() as primary:
        written = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with admin(standby_port) as standby:
        return standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (written,)).fetchone()[0]


@contextlib.contextmanager
def replay_paused(standby_port: int):
    """The standby keeps receiving WAL but applies none of it (pg_wal_replay_pause), until the block ends."""
    with admin(standby_port) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            yield time.monotonic()
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def gateway(platform, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with requests.Session() as http:
        http.trust_env = False
        return http.request(method, platform.gateway_url(path), headers=headers, timeout=15, **kwargs)


def read_from(answer: requests.Response) -> str:
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Read-From"]


def order_ids(answer: requests.Response) -> set[str]:
    return {order["id"] for order in answer.json()["results"]}


def served(platform, service: str, database: str, reason: str) -> float:
    samples = scrape(platform.url(service, "/metrics"))
    return samples.value("lag_tolerant_reads_total", database=database, reason=reason)


def test_up_runs_a_streaming_replica_that_status_shows_with_its_lag(platform, standby_port):
    assert platform.processes()[PROGRAM][0] == "RUNNING"
    status = platform.manage_all("status")
    assert f"read replica: 127.0.0.1:{standby_port}: streaming" in status.stdout, status.stdout
    with admin(standby_port) as standby:
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    metrics = scrape(platform.url("orders", "/metrics"))
    assert metrics.value("replica_up") == 1.0 and metrics.value("replica_max_lag_seconds") == MAX_LAG
    assert metrics.has("replica_lag_seconds") and metrics.has("replica_lag_bytes")


def test_a_customer_reads_their_new_order_at_once_while_replay_is_paused(platform, shop, standby_port):
    customer, staff = shop.new_customer(), shop.staff
    product = shop.new_product(stock=10)
    # A write just before the pause, replayed: the standby's copy is current up to that moment.
    warm_up = gateway(platform, "POST", "/api/v1/orders/", customer, json=order_of(product))
    assert warm_up.status_code == 202, warm_up.text
    wait_until(lambda: replayed_everything(standby_port), timeout=20, message="the standby caught up")
    lagging_before = served(platform, "orders", "primary", "lagging")

    with replay_paused(standby_port) as paused_at:
        placed = gateway(platform, "POST", "/api/v1/orders/", customer, json=order_of(product))
        assert placed.status_code == 202, placed.text
        new_order = placed.json()["id"]

        mine = gateway(platform, "GET", "/api/v1/orders/", customer)
        assert new_order in order_ids(mine)  # read-your-writes: pinned to the primary
        assert read_from(mine) == "primary; reason=pinned"
        detail = gateway(platform, "GET", f"/api/v1/orders/{new_order}/", customer)
        assert (read_from(detail), detail.json()["id"]) == ("primary; reason=pinned", new_order)

        theirs = gateway(platform, "GET", "/api/v1/orders/", staff)  # everyone's, newest first
        assert time.monotonic() - paused_at < MAX_LAG - 1, "too slow to read within the lag limit"
        assert read_from(theirs) == FROM_REPLICA  # another reader, within the limit: the replica's copy
        assert new_order not in order_ids(theirs) and warm_up.json()["id"] in order_ids(theirs)

        # Past the limit, nobody is served the replica's copy: the staff list falls back to the primary.
        fallback = wait_until(
            lambda: (
                (a := gateway(platform, "GET", "/api/v1/orders/", staff)).headers["X-Read-From"]
                == "primary; reason=lagging"
                and a
            ),
            timeout=MAX_LAG + 10,
            message="the lagging replica given up",
        )
        assert time.monotonic() - paused_at > MAX_LAG - 1
        assert new_order in order_ids(fallback)
        assert served(platform, "orders", "primary", "lagging") > lagging_before
        assert scrape(platform.url("orders", "/metrics")).value("replica_lag_seconds") > MAX_LAG

    back = wait_until(
        lambda: (
            (a := gateway(platform, "GET", "/api/v1/orders/", staff)).headers["X-Read-From"] == FROM_REPLICA
            and a
        ),
        timeout=30,
        message="reads back on the replica once it replayed",
    )
    assert new_order in order_ids(back)


def test_with_the_replica_stopped_listings_answer_from_the_primary_then_return_to_it(
    platform, shop, standby_port
):
    customer = shop.new_customer()
    product = shop.new_product(stock=3)
    sku = gateway(platform, "GET", f"/api/v1/products/{product}/").json()["sku"]
    placed = gateway(platform, "POST", "/api/v1/orders/", customer, json=order_of(product))
    assert placed.status_code == 202, placed.text
    unavailable_before = served(platform, "catalog", "primary", "unavailable")

    stopped = platform.supervisorctl("stop", PROGRAM)
    assert "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    try:
        listing = search(platform, sku)
        assert read_from(listing) == "primary; reason=unavailable"
        assert [p["id"] for p in listing.json()["results"]] == [product]
        orders = gateway(platform, "GET", "/api/v1/orders/", customer)
        assert read_from(orders) == "primary; reason=unavailable"
        assert order_ids(orders) == {placed.json()["id"]}
        assert served(platform, "catalog", "primary", "unavailable") > unavailable_before
        assert scrape(platform.url("catalog", "/metrics")).value("replica_up") == 0.0
    finally:
        started = platform.supervisorctl("start", PROGRAM)
        assert "started" in started.stdout, started.stdout + started.stderr

    back = wait_until(
        lambda: (a := search(platform, sku)).headers.get("X-Read-From") == FROM_REPLICA and a,
        timeout=30,
        message="listings back on the restarted replica",
    )
    assert [p["id"] for p in back.json()["results"]] == [product]


def order_of(product: str) -> dict:
    return {
        "items": [{"product_id": product, "quantity": 1}],
        "payment_token": "tok_visa",
        "shipping_address": SHIPPING,
    }


def search(platform, sku: str) -> requests.Response:
    """A catalog search no earlier request made: the cache has no page for it, the database answers."""
    return gateway(platform, "GET", f"/api/v1/products/?search={sku}&max_price={next(distinct)}000.00")

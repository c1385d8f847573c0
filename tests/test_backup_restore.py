"""A backup restores into a working platform, as an operator who lost the e2e instance's disk would do it:

1. real orders through the saga on the e2e instance: confirmed, rejected (out of stock), cancelled
   (declined card), confirmed then cancelled and refunded;
2. two events in flight when the backup is taken: an order confirmed while notifications' worker was
   stopped (published, still in its queue, and queues are not backed up), and an order cancelled by a
   process whose broker link was down while orders' relay was stopped (its outbox row unpublished);
3. `manage_all.py backup` of e2e, then `restore` into an instance that never existed (its own name,
   ports + 5000, Redis database 5), then `up` there, which migrates and starts it; its payment provider
   is e2e's sandbox, as a real provider stays the same across a restore;
4. in the restored instance: every order of the backup with its status, both events in flight taken to
   their end (the cancelled order refunded, the confirmed one mailed, the repeat absorbed by the
   consumers that had it), the saga's invariants of the chaos suite holding, and a new order confirmed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from benchmarks.chaos import invariants, messages
from benchmarks.chaos.engine import wait_for_quiet
from benchmarks.chaos.load import Run
from devtools import instance, topology
from shared.testing import wait_until
from tests.conftest import ROOT, RunningPlatform
from tests.instances import drop_instance_data
from tests.shop import Shop

# The instance restored into; it needs no read replica of its own (devtools.replica) for what is tested.
RESTORED = {
    "PLATFORM_INSTANCE": "restored",
    "PLATFORM_PORT_OFFSET": "5000",
    "PLATFORM_REDIS_DB": "5",
    "PLATFORM_REPLICA": "off",
}
CUSTOMER_PASSWORD = "correct-horse-battery-9"
# A process of orders whose broker link is down: the row commits, the fast path fails, the sweep is off.
CANCEL_WITHOUT_BROKER = """
import uuid
from orders.services import order_cancel
order_cancel(order_id=uuid.UUID({order_id!r}))
"""


class ProviderOutside(Run):
    """The restored platform's databases, with the payment provider it calls: e2e's sandbox."""

    def __init__(self, platform: instance.Platform, provider_url: str) -> None:
        super().__init__(platform)
        self.provider_url = provider_url

    def sandbox_url(self, name: str) -> str:
        return self.provider_url


@pytest.fixture(scope="module")
def shop(platform) -> Shop:
    return Shop(platform)


@pytest.fixture(scope="module")
def restored(platform):
    """The instance to restore into: nothing of it exists before the test, nothing after it."""
    model = topology.load()
    offset = int(RESTORED["PLATFORM_PORT_OFFSET"])
    provider = model.peer("payment_provider")
    env = platform.env | RESTORED | {f"{provider.env_name}_URL": platform.url("payment_provider", "")}
    target = replace(
        platform,
        env=env,
        ports={peer.name: peer.port + offset for peer in model.peers},
        gateway_port=model.gateway.port + offset,
    )
    target_model = instance.load_platform(env=env)
    target.manage_all("down")
    drop_instance_data(target_model)
    yield target, target_model
    stopped = target.manage_all("down")
    drop_instance_data(target_model)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def new_customer(shop: Shop) -> tuple[str, str]:
    email = f"restore-{uuid.uuid4().hex[:10]}@example.com"
    answer = shop.call(
        "POST", "identity", "/api/v1/auth/register/",
        json={"email": email, "password": CUSTOMER_PASSWORD, "full_name": "Restored Buyer"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return email, shop.login(email, CUSTOMER_PASSWORD)


def place(shop: Shop, token: str, product: str, quantity: int, card: str = "tok_visa") -> dict:
    placed = shop.place_order(token, [(product, quantity)], payment_token=card)
    assert placed.status_code == 202, placed.text
    return shop.wait_for_terminal(token, placed.json()["id"])


def settled(shop: Shop, product: str, reserved: int = 0) -> None:
    wait_until(lambda: shop.stock(product)["reserved"] == reserved, timeout=20, message="stock settled")


def cancel_with_broker_down(platform: RunningPlatform, order_id: str) -> None:
    env = platform.model("environment.service_env(platform, 'orders')")
    env["BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens: the publish fails at once
    answer = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CANCEL_WITHOUT_BROKER.format(order_id=order_id)],
        cwd=ROOT / "services" / "orders", env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr


def orders_table(run: Run) -> dict[str, tuple[str, str]]:
    with run.database("orders") as db:
        rows = db.execute("SELECT id::text, status, status_reason FROM orders_order").fetchall()
    return {order_id: (status, reason) for order_id, status, reason in rows}


def outbox_row(run: Run, service: str, order_id: str, event_type: str) -> tuple:
    with run.database(service) as db:
        return db.execute(
            "SELECT id::text, published_at FROM messaging_outboxevent "
            "WHERE order_id = %s AND event_type = %s",
            [order_id, event_type],
        ).fetchone()


def notifications_of(run: Run, event_id: str) -> list[str]:
    with run.database("notifications") as db:
        rows = db.execute("SELECT status FROM notifications_notification WHERE event_id = %s", [event_id])
        return [status for (status,) in rows]


def inbox_deliveries(run: Run, service: str, event_id: str) -> list[int]:
    with run.database(service) as db:
        rows = db.execute("SELECT deliveries FROM messaging_inboxmessage WHERE event_id = %s", [event_id])
        return [deliveries for (deliveries,) in rows]


@dataclass
class Story:
    """What the test did on e2e: its customer, products, and orders by what happened to them."""

    since: datetime
    email: str
    product: str
    scarce: str
    stock_before: dict
    orders: dict[str, str] = field(default_factory=dict)  # what happened -> order id


def place_every_kind_of_order(shop: Shop, source: Run) -> Story:
    with source.database("orders") as db:
        since = db.execute("SELECT now()").fetchone()[0]
    email, customer = new_customer(shop)
    product, scarce = shop.new_product(stock=10, price="5.00"), shop.new_product(stock=1, price="9.00")
    story = Story(since, email, product, scarce, invariants.stock_totals(source, [product, scarce]))
    story.orders["confirmed"] = place(shop, customer, product, 2)["id"]
    story.orders["out of stock"] = place(shop, customer, scarce, 2)["id"]
    story.orders["declined"] = place(shop, customer, product, 1, card="tok_chargeDeclined")["id"]
    story.orders["cancelled in flight"] = place(shop, customer, product, 1)["id"]
    refunded = story.orders["refunded"] = place(shop, customer, product, 1)["id"]
    assert shop.call("POST", "orders", f"/api/v1/orders/{refunded}/cancel/", customer).status_code == 202
    wait_until(lambda: shop.payments(refunded)[0]["status"] == "refunded", message="the refund")
    settled(shop, product)
    return story


def back_up_with_events_in_flight(platform, shop: Shop, source: Run, story: Story, folder) -> tuple:
    """An order confirmed while notifications' worker is stopped, an order cancelled while orders'
    relay cannot publish, then the backup; e2e runs again afterwards. Returns the manifest and the
    orders table as it was backed up (nothing could change it while orders' worker was stopped)."""
    customer = shop.login(story.email, CUSTOMER_PASSWORD)
    stopped = ["notifications-worker", "orders-worker", "orders-beat"]
    try:
        assert platform.supervisorctl("stop", "notifications-worker").returncode == 0
        story.orders["confirmed, mail in flight"] = place(shop, customer, story.product, 1)["id"]
        settled(shop, story.product)
        assert platform.supervisorctl("stop", "orders-worker", "orders-beat").returncode == 0
        cancel_with_broker_down(platform, story.orders["cancelled in flight"])
        assert outbox_row(source, "orders", story.orders["cancelled in flight"], "order.cancelled")[1] is None
        backed_up = orders_table(source)
        taken = platform.manage_all("backup", "--output", str(folder))
    finally:
        platform.supervisorctl("start", *stopped)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    return json.loads(taken.stdout), backed_up


def finish_in_flight_events(there: Shop, restored: Run, story: Story) -> None:
    """The cancellation is refunded; the confirmation mailed once, and absorbed where it had arrived."""
    wait_until(
        lambda: [p["status"] for p in there.payments(story.orders["cancelled in flight"])] == ["refunded"],
        timeout=30,
        message="the order cancelled in flight refunded after the restore",
    )
    confirmation, _ = outbox_row(
        restored, "orders", story.orders["confirmed, mail in flight"], "order.confirmed"
    )
    wait_until(
        lambda: notifications_of(restored, confirmation) == ["sent"],
        timeout=30,
        message="the confirmation that was in notifications' queue, mailed",
    )
    assert inbox_deliveries(restored, "inventory", confirmation) == [2], "the repeat was absorbed"
    assert inbox_deliveries(restored, "notifications", confirmation) == [1]


def invariant_problems(restored: Run, model: instance.Platform, story: Story, statuses: dict) -> dict:
    """The chaos suite's invariants (benchmarks/chaos/invariants.py) over the test's orders and events."""
    ours, products = list(story.orders.values()), [story.product, story.scarce]
    return {
        "every order terminal": invariants.unfinished_orders(statuses, ours),
        "stock conserved, none reserved": invariants.stock_problems(
            story.stock_before, invariants.stock_totals(restored, products)
        ),
        "one captured payment per confirmed order": invariants.payment_problems(restored, ours),
        "at most one charge per order, kept if confirmed": invariants.provider_problems(restored, ours),
        "no outbox row pending": [s for s, n in invariants.pending_outbox(restored).items() if n],
        "every queue consumed": invariants.consumer_problems(model),
        "every event in each consumer's inbox once": invariants.inbox_problems(
            restored, invariants.scenario_events(restored, story.since), messages.subscriptions(model)
        ),
    }


EXPECTED = {
    "confirmed": "confirmed",
    "out of stock": "rejected",
    "declined": "cancelled",
    "cancelled in flight": "cancelled",
    "refunded": "cancelled",
    "confirmed, mail in flight": "confirmed",
    "placed after the restore": "confirmed",
}


def test_a_backup_restores_into_a_fresh_instance_where_the_saga_holds_and_runs(
    platform, shop, restored, tmp_path
):
    target, target_model = restored
    source = Run(instance.load_platform(env=platform.env))
    story = place_every_kind_of_order(shop, source)
    manifest, backed_up = back_up_with_events_in_flight(platform, shop, source, story, tmp_path / "backup")
    assert manifest["instance"] == "e2e" and len(manifest["databases"]) == len(platform.services)

    restoring = target.manage_all("restore", manifest["backup"])
    assert restoring.returncode == 0, restoring.stdout + restoring.stderr
    report = json.loads(restoring.stdout)
    assert report["replaced"] == [] and report["events_to_republish"].get("orders", 0) >= 1, report
    restored = ProviderOutside(target_model, platform.url("payment_provider", ""))
    assert orders_table(restored) == backed_up
    brought_up = target.manage_all("up", "--no-install")
    assert brought_up.returncode == 0, brought_up.stdout + brought_up.stderr

    there = Shop(target)
    finish_in_flight_events(there, restored, story)
    customer = there.login(story.email, CUSTOMER_PASSWORD)
    story.orders["placed after the restore"] = place(there, customer, story.product, 1)["id"]
    statuses, _ = wait_for_quiet(restored, list(story.orders.values()), since=time.monotonic())
    # rabbitmqctl lists a quorum queue's consumers from its periodic statistics: new workers show late.
    wait_until(lambda: not invariants.consumer_problems(target_model), timeout=30, message="queues consumed")
    assert {what: statuses.get(order_id) for what, order_id in story.orders.items()} == EXPECTED
    problems = invariant_problems(restored, target_model, story, statuses)
    assert not any(problems.values()), problems

"""What must hold once the platform is quiet, read from the services' databases, the broker, the mail
directory and the provider sandbox. Each check returns the problems it found (empty when it holds).

(a) every order the scenario created terminal (those whose client got no 202 too); (b) per product
on_hand + reserved + sold unchanged, nothing left reserved; (c) a confirmed order has one captured
payment of its total and any other order none, and the provider holds at most one successful charge
per order, refunded unless the order is confirmed; (d) no outbox row unpublished, nothing parked in a
dead-letter queue but the bad messages sent, every queue consumed again; (e) every event reached each
of its consumers' inboxes once, and every event that warrants an e-mail has exactly one notification
and exactly one e-mail.
"""

from __future__ import annotations

import email
from collections import Counter
from datetime import datetime
from decimal import Decimal

import kombu

from benchmarks.chaos import messages
from benchmarks.chaos.load import Run
from devtools import instance

TERMINAL = ("confirmed", "rejected", "cancelled")
PROVIDER = "payment_provider"


def orders_since(run: Run, since: datetime) -> list[str]:
    with run.database("orders") as db:
        return [
            row[0] for row in db.execute("SELECT id::text FROM orders_order WHERE created_at >= %s", [since])
        ]


def order_statuses(run: Run, order_ids: list[str]) -> dict[str, str]:
    with run.database("orders") as db:
        rows = db.execute("SELECT id::text, status FROM orders_order WHERE id::text = ANY(%s)", [order_ids])
        return dict(rows.fetchall())


def unfinished_orders(statuses: dict[str, str], order_ids: list[str]) -> list[str]:
    return [
        f"order {order_id} is {statuses.get(order_id)}"
        for order_id in order_ids
        if statuses.get(order_id) not in TERMINAL
    ]


def stock_totals(run: Run, products: list[str]) -> dict[str, tuple[int, int]]:
    with run.database("inventory") as db:
        rows = db.execute(
            "SELECT product_id::text, on_hand + reserved + sold, reserved FROM inventory_stock "
            "WHERE product_id::text = ANY(%s)",
            [products],
        ).fetchall()
    return {product: (total, reserved) for product, total, reserved in rows}


def stock_problems(before: dict, after: dict) -> list[str]:
    problems = []
    for product, (total, _reserved) in before.items():
        total_after, reserved_after = after.get(product, (None, None))
        if total_after != total or reserved_after != 0:
            problems.append(f"product {product}: total {total} -> {total_after}, {reserved_after} reserved")
    return problems


def payment_problems(run: Run, order_ids: list[str]) -> list[str]:
    orders = _orders(run, order_ids)
    with run.database("payments") as db:
        captured: dict[str, list] = {}
        for order_id, amount in db.execute(
            "SELECT order_id::text, amount FROM payments_payment WHERE status = 'captured' "
            "AND order_id::text = ANY(%s)",
            [order_ids],
        ).fetchall():
            captured.setdefault(order_id, []).append(amount)
    problems = []
    for order_id, (status, total) in orders.items():
        amounts = captured.get(order_id, [])
        if status == "confirmed" and amounts != [total]:
            problems.append(f"{order_id} confirmed with captured {amounts}, total {total}")
        if status != "confirmed" and amounts:
            problems.append(f"{order_id} {status} but captured {amounts}")
    return problems


def provider_problems(run: Run, order_ids: list[str]) -> list[str]:
    """The provider's side of (c): at most one successful charge per order, kept only by confirmed ones."""
    answer = run.http.get(
        f"{run.sandbox_url(PROVIDER)}/v1/charges", params={"status": "succeeded"}, timeout=30
    )
    answer.raise_for_status()
    charges: dict[str, list[dict]] = {}
    for charge in answer.json()["data"]:
        order_id = charge.get("description", "").removeprefix("order ")
        charges.setdefault(order_id, []).append(charge)
    problems = []
    for order_id, (status, total) in _orders(run, order_ids).items():
        succeeded = charges.get(order_id, [])
        kept = [Decimal(c["amount"]) - Decimal(c["amount_refunded"]) for c in succeeded]
        if len(succeeded) > 1:
            problems.append(f"{order_id}: {len(succeeded)} successful charges at the provider")
        elif status == "confirmed" and kept != [total]:
            problems.append(f"{order_id} confirmed, the provider keeps {kept} of {total}")
        elif status != "confirmed" and any(kept):
            problems.append(f"{order_id} {status}, the provider keeps {kept}")
    return problems


def _orders(run: Run, order_ids: list[str]) -> dict[str, tuple[str, Decimal]]:
    with run.database("orders") as db:
        rows = db.execute(
            "SELECT id::text, status, total FROM orders_order WHERE id::text = ANY(%s)", [order_ids]
        ).fetchall()
    return {order_id: (status, total) for order_id, status, total in rows}


def pending_outbox(run: Run) -> dict[str, int]:
    pending = {}
    for service in run.platform.topology.service_names:
        with run.database(service) as db:
            count = db.execute("SELECT count(*) FROM messaging_outboxevent WHERE published_at IS NULL")
            pending[service] = count.fetchone()[0]
    return pending


def pending_notifications(run: Run) -> int:
    with run.database("notifications") as db:
        return db.execute(
            "SELECT count(*) FROM notifications_notification WHERE status = 'pending'"
        ).fetchone()[0]


def service_queues(platform: instance.Platform) -> list[dict]:
    """Each service's events and tasks queue: name, messages (ready or not yet acknowledged) and consumers."""
    services = platform.topology.service_names
    wanted = {f"{service}.{kind}" for service in services for kind in ("events", "tasks")}
    return [
        queue for queue in messages.list_queues(platform, "messages", "consumers") if queue["name"] in wanted
    ]


def queued_messages(platform: instance.Platform) -> int:
    return sum(queue["messages"] for queue in service_queues(platform))


def consumer_problems(platform: instance.Platform) -> list[str]:
    """After the fault, every queue is consumed again (a worker that lost its channel came back)."""
    return [
        f"{queue['name']} has no consumer" for queue in service_queues(platform) if not queue["consumers"]
    ]


def take_dead_letters(platform: instance.Platform) -> dict[str, list[str]]:
    """Every message parked in each service's dead-letter queue (removed): service -> message ids."""
    parked: dict[str, list[str]] = {}
    with kombu.Connection(platform.instance.broker_url) as connection:
        for service in platform.topology.service_names:
            queue = kombu.Queue(f"{service}.dead-letter", channel=connection.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                headers = message.headers or {}
                parked.setdefault(service, []).append(
                    str(headers.get("id") or message.properties.get("message_id"))
                )
    return parked


def scenario_events(run: Run, since: datetime) -> list[tuple[str, str]]:
    """(event id, type) of every event any service recorded in its outbox since `since`."""
    events = []
    for service in run.platform.topology.service_names:
        with run.database(service) as db:
            rows = db.execute(
                "SELECT id::text, event_type FROM messaging_outboxevent WHERE created_at >= %s", [since]
            )
            events += rows.fetchall()
    return events


def inbox_problems(run: Run, events: list[tuple[str, str]], consumed: dict[str, set[str]]) -> list[str]:
    """Every event reached every consumer of its type in each subscribing service, once (the inbox's
    unique key makes more than once impossible; this finds a missing one)."""
    problems = []
    for service, types in consumed.items():
        wanted = [(event_id, event_type) for event_id, event_type in events if event_type in types]
        if not wanted:
            continue
        with run.database(service) as db:
            consumers = dict(db.execute(
                "SELECT event_type, count(DISTINCT consumer) FROM messaging_inboxmessage "
                "WHERE event_type = ANY(%s) GROUP BY event_type", [sorted(types)],
            ).fetchall())  # fmt: skip
            rows = Counter(dict(db.execute(
                "SELECT event_id::text, count(*) FROM messaging_inboxmessage WHERE event_id::text = ANY(%s) "
                "GROUP BY event_id", [[event_id for event_id, _ in wanted]],
            ).fetchall()))  # fmt: skip
        for event_id, event_type in wanted:
            expected = consumers.get(event_type, 0)
            if expected == 0 or rows[event_id] != expected:
                problems.append(
                    f"{service}: {event_type} {event_id} in {rows[event_id]} of {expected} inboxes"
                )
    return problems


def redelivery_problems(run: Run, events: list[tuple[str, str]], held: int) -> list[str]:
    """After the redeliver fault: the held events came three times each (the inbox counts deliveries)."""
    tripled = 0
    ids = [event_id for event_id, _type in events]
    for service in run.platform.topology.service_names:
        with run.database(service) as db:
            tripled += db.execute(
                "SELECT count(DISTINCT event_id) FROM messaging_inboxmessage "
                "WHERE event_id::text = ANY(%s) AND deliveries >= 3", [ids],
            ).fetchone()[0]  # fmt: skip
    return [] if held and tripled >= held else [f"{held} messages held, {tripled} events seen three times"]


def late_event_problems(run: Run, event_id: str) -> list[str]:
    """The event of a transaction held open while later ones committed: published once it committed
    (its outbox row marked, the message parked in domain.unroutable, where no subscriber sends it)."""
    with run.database("orders") as db:
        row = db.execute(
            "SELECT published_at FROM messaging_outboxevent WHERE id = %s", [event_id]
        ).fetchone()
    unroutable = []
    with kombu.Connection(run.platform.instance.broker_url) as connection:
        queue = kombu.Queue("domain.unroutable", channel=connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            unroutable.append((message.headers or {}).get("id"))
    problems = [] if row and row[0] else [f"held event {event_id} never published"]
    return problems + ([] if event_id in unroutable else [f"held event {event_id} not in domain.unroutable"])


def email_problems(
    run: Run, events: list[tuple[str, str]], mailed_types: set[str], since: datetime
) -> list[str]:
    """Exactly one notification, sent, and exactly one e-mail file per event that warrants an e-mail."""
    wanted = [event_id for event_id, event_type in events if event_type in mailed_types]
    with run.database("notifications") as db:
        notifications = db.execute(
            "SELECT event_id::text, id::text, status FROM notifications_notification "
            "WHERE resend_of_id IS NULL AND event_id::text = ANY(%s)", [wanted],
        ).fetchall()  # fmt: skip
    per_event: dict[str, list[tuple[str, str]]] = {}
    for event_id, notification_id, status in notifications:
        per_event.setdefault(event_id, []).append((notification_id, status))
    mailed = mails_sent(run, since)
    problems = []
    for event_id in wanted:
        found = per_event.get(event_id, [])
        if len(found) != 1 or found[0][1] != "sent":
            problems.append(f"event {event_id}: notifications {found}")
        elif mailed[found[0][0]] != 1:
            problems.append(f"event {event_id}: {mailed[found[0][0]]} e-mails")
    return problems


def mails_sent(run: Run, since: datetime) -> Counter:
    """Notification id -> e-mails in the instance's mail directory written since `since`."""
    sent: Counter = Counter()
    folder = run.platform.instance.var_dir / "mail"
    for path in folder.glob("*.log"):
        if path.stat().st_mtime < since.timestamp():
            continue
        with path.open("rb") as file:
            sent[email.message_from_binary_file(file)["X-Notification-Id"]] += 1
    return sent

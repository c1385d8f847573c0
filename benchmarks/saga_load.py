"""Load the running platform with orders and print what the saga did with them.

    .venv/bin/python benchmarks/saga_load.py --rate 20 --duration 30
    .venv/bin/python benchmarks/saga_load.py --rate 100 --duration 60 --workers 64

Places orders through the REST API at a fixed rate (open loop: a slow platform does not slow the
arrivals down), waits until every order is terminal, then prints: orders/s confirmed, saga latency
p50/p95/p99 taken from each order's own history (created -> confirmed, written by the orders service),
HTTP errors, and the invariant check (stock moved exactly by the confirmed quantities, one captured
payment per confirmed order). Targets and measured figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import proc_cpu  # noqa: E402
from devtools import topology  # noqa: E402

SHIPPING = {"line1": "1 Bench Street", "city": "Loadville", "postal_code": "00000", "country": "US"}


class Platform:
    def __init__(self, base_ports: dict[str, int], offset: int) -> None:
        self.ports = {name: port + offset for name, port in base_ports.items()}
        self.http = requests.Session()
        self.http.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=256)
        self.http.mount("http://", adapter)

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def call(self, method: str, service: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, self.url(service, path), headers=headers, timeout=30, **kwargs)

    def token(self, email: str, password: str) -> str:
        answer = self.call(
            "POST", "identity", "/api/v1/auth/token/", json={"email": email, "password": password}
        )
        answer.raise_for_status()
        return answer.json()["access"]

    def customer(self) -> str:
        email, password = f"load-{uuid.uuid4().hex[:12]}@example.com", "load-test-password-1"
        body = {"email": email, "password": password, "full_name": "Load Tester"}
        self.call("POST", "identity", "/api/v1/auth/register/", json=body).raise_for_status()
        return self.token(email, password)

    def product(self, staff: str, stock: int) -> str:
        category = self.call("GET", "catalog", "/api/v1/categories/").json()["results"][0]["slug"]
        sku = f"LOAD-{uuid.uuid4().hex[:10].upper()}"
        body = {"sku": sku, "name": f"Load {sku}", "description": "load test", "category": category,
                "price": "4.00", "initial_stock": stock}  # fmt: skip
        answer = self.call("POST", "catalog", "/api/v1/products/", staff, json=body)
        answer.raise_for_status()
        product_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while self.call("GET", "inventory", f"/api/v1/stock/{product_id}/", staff).status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit("inventory never created the stock row: is the platform running?")
            time.sleep(0.2)
        return product_id


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def saga_latency_ms(order: dict) -> float | None:
    """created -> confirmed from the order's own history rows."""
    stamps = {entry["status"]: entry["at"] for entry in order["history"]}
    if "confirmed" not in stamps:
        return None
    started = datetime.fromisoformat(stamps["pending"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(stamps["confirmed"].replace("Z", "+00:00"))
    return (finished - started).total_seconds() * 1000


def process_group(command: str, web_ports: dict[int, str]) -> str | None:
    """The platform process a command line belongs to, as a label for CPU accounting."""
    if match := re.search(r"--bind 127\.0\.0\.1:(\d+)", command):
        return f"{web_ports.get(int(match[1]), match[1])} web"
    if match := re.search(r"celery .*worker .*--hostname (\w+)@", command):
        return f"{match[1]} worker"
    for needle, label in (
        (" beat ", "beats"), (" flower", "flower"), ("supervisord", "supervisord"), ("nginx", "nginx"),
        ("postgres:", "postgres"), ("redis-server", "redis"), ("prometheus", "prometheus"),
        ("alertmanager", "alertmanager"),
    ):  # fmt: skip
        if needle in command:
            return label
    return proc_cpu.rabbitmq_label(command)


def print_cpu(spent: dict[str, float], client_seconds: float, orders: int) -> None:
    """CPU milliseconds per confirmed order by process group: where the machine's cores went."""
    spent = {**spent, "load generator (this script)": client_seconds}
    total = sum(spent.values())
    print(f"cpu per order   {1000 * total / orders:.1f} ms in all ({total:.1f} s for {orders} orders):")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        if seconds >= 0.005 * total:
            print(f"  {1000 * seconds / orders:6.1f} ms  {label}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second to place")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to keep placing orders")
    parser.add_argument("--workers", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--products", type=int, default=10, help="orders spread over this many products")
    parser.add_argument("--port-offset", type=int, default=0, help="1000 for a non-dev PLATFORM_INSTANCE")
    parser.add_argument("--staff", default="staff@example.com:staff-demo-pass-1")
    parser.add_argument(
        "--cpu", action="store_true", help="print CPU per confirmed order by process group (Linux /proc)"
    )
    args = parser.parse_args()

    model = topology.load()
    ports = {service.name: service.port for service in model.services}
    platform = Platform(ports, args.port_offset)
    staff = platform.token(*args.staff.split(":", 1))
    total_orders = int(args.rate * args.duration)
    per_product_stock = total_orders * 2 + 10
    products = [platform.product(staff, stock=per_product_stock) for _ in range(args.products)]
    customers = [platform.customer() for _ in range(args.customers)]
    print(
        f"placing {total_orders} orders at {args.rate}/s for {args.duration:.0f}s with {args.workers} clients"
    )

    placed: list[tuple[str, str]] = []
    errors: list[str] = []
    lock = threading.Lock()
    # From here on (customers and products exist): the orders' cost, the status polls below included.
    cpu_before, client_cpu_before = proc_cpu.snapshot(), time.process_time()

    def place(index: int) -> None:
        token = customers[index % len(customers)]
        product = products[index % len(products)]
        body = {"items": [{"product_id": product, "quantity": 1}], "payment_token": "tok_visa",
                "shipping_address": SHIPPING}  # fmt: skip
        try:
            answer = platform.call("POST", "orders", "/api/v1/orders/", token, json=body)
        except requests.RequestException as exc:
            with lock:
                errors.append(type(exc).__name__)
            return
        with lock:
            if answer.status_code == 202:
                placed.append((token, answer.json()["id"]))
            else:
                errors.append(f"HTTP {answer.status_code}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for index in range(total_orders):
            time.sleep(max(0.0, started + index / args.rate - time.monotonic()))
            pool.submit(place, index)
    placing_seconds = time.monotonic() - started

    orders: list[dict] = []
    deadline = time.monotonic() + 120
    for token, order_id in placed:
        while True:
            order = platform.call("GET", "orders", f"/api/v1/orders/{order_id}/", token).json()
            if order["status"] in {"confirmed", "rejected", "cancelled"} or time.monotonic() > deadline:
                orders.append(order)
                break
            time.sleep(0.2)
    web_ports = {port + args.port_offset: name for name, port in ports.items()} | {
        sandbox.port + args.port_offset: sandbox.name for sandbox in model.sandboxes
    }
    cpu_spent = proc_cpu.spent(cpu_before, proc_cpu.snapshot(), lambda line: process_group(line, web_ports))
    client_cpu = time.process_time() - client_cpu_before
    confirmed = [o for o in orders if o["status"] == "confirmed"]
    latencies = [ms for o in confirmed if (ms := saga_latency_ms(o)) is not None]
    last_confirmation = max(
        (datetime.fromisoformat(o["updated_at"].replace("Z", "+00:00")).timestamp() for o in confirmed),
        default=0,
    )
    first_creation = min(
        (datetime.fromisoformat(o["created_at"].replace("Z", "+00:00")).timestamp() for o in orders),
        default=0,
    )
    confirmed_span = max(last_confirmation - first_creation, placing_seconds)

    # Inventory commits a confirmed order's units a moment after the order is terminal: let it settle.
    settle_deadline = time.monotonic() + 60
    sold = 0
    stock_ok = True
    for product in products:
        while (stock := platform.call("GET", "inventory", f"/api/v1/stock/{product}/", staff).json())[
            "reserved"
        ]:
            if time.monotonic() > settle_deadline:
                break
            time.sleep(0.5)
        stock_ok &= stock["reserved"] == 0 and stock["on_hand"] >= 0
        sold += per_product_stock - stock["on_hand"] - stock["reserved"]
    stock_ok &= sold == len(confirmed)
    captured = Decimal(0)
    for order in confirmed:
        payments = platform.call("GET", "payments", f"/api/v1/payments/?order_id={order['id']}", staff).json()
        captured += sum(Decimal(p["amount"]) for p in payments["results"] if p["status"] == "captured")
    money_ok = captured == sum(Decimal(o["total"]) for o in confirmed)

    print(f"placed          {len(placed)} in {placing_seconds:.1f}s ({len(placed) / placing_seconds:.1f}/s)")
    print(f"errors          {len(errors)} {sorted(set(errors))}")
    print(f"terminal        {len(orders)}: confirmed {len(confirmed)}, other {len(orders) - len(confirmed)}")
    print(f"confirmed/s     {len(confirmed) / confirmed_span:.1f}")
    if latencies:
        p50, p95, p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
        mean = statistics.fmean(latencies)
        print(f"saga latency    p50 {p50:.0f} ms  p95 {p95:.0f} ms  p99 {p99:.0f} ms  mean {mean:.0f} ms")
    if args.cpu and confirmed:
        print_cpu(cpu_spent, client_cpu, len(confirmed))
    verdict = {True: "ok", False: "BROKEN"}
    print(f"invariants      stock {verdict[stock_ok]} (units sold {sold}), money {verdict[money_ok]}")
    return 0 if stock_ok and money_ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())

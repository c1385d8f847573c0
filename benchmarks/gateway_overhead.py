"""What the gateway costs: the same cached catalog product GET, directly and through nginx.

    .venv/bin/python benchmarks/gateway_overhead.py --requests 2000 --concurrency 16

Three runs against the running platform (PLATFORM_INSTANCE picks the ports, like manage_all.py):
catalog directly, the gateway anonymously (auth_request in "read" mode, answered from nginx's cache),
and the gateway with a customer's token (verified once, then cached for 10 s). Prints requests/s,
p50/p99 latency and each run's ratio to the direct one. Closed loop: each worker sends its next request
when the previous answered, so the figures are throughput at that concurrency.

The gateway's per-address limit (GATEWAY_RATE_PER_IP, 50r/s) would answer most of these with 429:
render it out of the way first, e.g. `GATEWAY_RATE_PER_IP=100000r/s python3 manage_all.py up`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's devtools package

from devtools import topology  # noqa: E402


def ports() -> tuple[int, int, int]:
    """(catalog, identity, gateway) ports of the instance named by PLATFORM_INSTANCE."""
    model = topology.load()
    offset = 0 if os.environ.get("PLATFORM_INSTANCE", "dev") == "dev" else 1000
    return (
        model.service("catalog").port + offset,
        model.service("identity").port + offset,
        model.gateway.port + offset,
    )


def session(concurrency: int) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))
    return http


def run(url: str, headers: dict, total: int, concurrency: int) -> dict:
    """Send `total` GETs with `concurrency` workers; latencies in milliseconds."""
    http = session(concurrency)

    def one(_: int) -> float:
        started = time.perf_counter()
        answer = http.get(url, headers=headers, timeout=10)
        answer.raise_for_status()
        return (time.perf_counter() - started) * 1000

    for _ in range(20):  # warm the caches and the keepalive connections
        one(0)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = sorted(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    return {
        "rps": total / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    catalog, identity, gateway = ports()
    http = session(1)
    token = http.post(
        f"http://127.0.0.1:{identity}/api/v1/auth/token/",
        json={"email": "customer@example.com", "password": "customer-demo-pass-1"},
        timeout=10,
    ).json()["access"]
    product = http.get(f"http://127.0.0.1:{catalog}/api/v1/products/", timeout=10).json()["results"][0]["id"]
    path = f"/api/v1/products/{product}/"
    runs = {
        "direct": (f"http://127.0.0.1:{catalog}{path}", {}),
        "gateway, anonymous": (f"http://127.0.0.1:{gateway}{path}", {}),
        "gateway, with token": (f"http://127.0.0.1:{gateway}{path}", {"Authorization": f"Bearer {token}"}),
    }
    results = {
        name: run(url, headers, args.requests, args.concurrency) for name, (url, headers) in runs.items()
    }
    base = results["direct"]
    print(f"{'run':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>8}")
    for name, figures in results.items():
        ratio = figures["p50"] / base["p50"]
        print(f"{name:<22}{figures['rps']:>9.0f}{figures['p50']:>9.2f}{figures['p99']:>9.2f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()

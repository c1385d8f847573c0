"""Requests from other loopback addresses (127.0.0.2, .3, ...): the gateway limits rates per client
address, and every other request of the suites comes from 127.0.0.1, so a test that floods does it from
an address of its own and spends only that address's budget."""

from __future__ import annotations

import json
from http.client import HTTPConnection


def from_address(source: str, port: int, method: str, path: str, body: dict | None = None, headers=None):
    """One request from `source` to the gateway on `port`: (status, headers, parsed body)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(
            method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})}
        )
        answer = connection.getresponse()
        raw = answer.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return answer.status, dict(answer.getheaders()), parsed
    finally:
        connection.close()


def until_limited(source: str, port: int, method: str, path: str, body=None, *, most: int = 200) -> list[int]:
    """Statuses of requests sent one after another until the first 429 (or `most` of them)."""
    statuses = []
    while len(statuses) < most:
        statuses.append(from_address(source, port, method, path, body)[0])
        if statuses[-1] == 429:
            break
    return statuses

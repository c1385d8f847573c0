"""The alert receiver: where Alertmanager's webhook delivers the platform's alerts, so they can be seen.

A plain WSGI application (standard library only), run like the sandboxes:

    gunicorn monitoring.alert_receiver:application --bind 127.0.0.1:9097 --workers 1 --threads 4

- `POST /alerts`  Alertmanager's webhook payload (version 4); every alert in it is appended to the file
  as one JSON line, with the group's receiver and status and the time it arrived.
- `GET /alerts`   the stored alerts, newest first: `{"count", "results"}`; filters `?alertname=`,
  `?status=firing|resolved`, `?limit=` (default 100, at most 1000).
- `GET /health/live`  `{"status": "healthy"}`.

Environment: ALERTS_FILE (default var/dev/alerts.jsonl). A real deployment would point Alertmanager at
a pager or a chat instead; this receiver is the visible destination of a developer's platform.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

logger = logging.getLogger("monitoring.alert_receiver")

DEFAULT_ALERTS_FILE = Path(__file__).resolve().parents[1] / "var" / "dev" / "alerts.jsonl"
MAX_BODY_BYTES = 1024 * 1024  # Alertmanager sends every alert of a group at once
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ALERT_FIELDS = ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def alerts_file() -> Path:
    return Path(os.environ.get("ALERTS_FILE", DEFAULT_ALERTS_FILE))


# --- storage -----------------------------------------------------------------------------------------


def store(records: list[dict]) -> None:
    """Append records as JSON lines; an exclusive lock keeps concurrent appends whole."""
    path = alerts_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    with path.open("a", encoding="utf-8") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        stream.write(text)
        stream.flush()


def stored() -> list[dict]:
    """Every stored alert, oldest first (a line cut short by a crash is skipped)."""
    try:
        lines = alerts_file().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            logger.warning("skipping a damaged line in %s", alerts_file())
    return records


# --- the webhook -------------------------------------------------------------------------------------


def records_from_payload(payload: object) -> list[dict]:
    """Alertmanager's webhook payload -> one record per alert; anything else is a clear 400."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise BadRequest(
            HTTPStatus.BAD_REQUEST,
            "invalid_payload",
            "expected Alertmanager's webhook JSON with an `alerts` list",
        )
    received_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = []
    for alert in payload["alerts"]:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid_alert", "every alert needs a `labels` object")
        record = {field: alert.get(field) for field in ALERT_FIELDS}
        record |= {
            "alertname": alert["labels"].get("alertname", ""),
            "receiver": payload.get("receiver", ""),
            "group_status": payload.get("status", ""),
            "received_at": received_at,
        }
        records.append(record)
    return records


def receive(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid_json", "the body is not JSON") from None
    records = records_from_payload(payload)
    store(records)
    for record in records:
        logger.info("alert %s %s %s", record["alertname"], record["status"], json.dumps(record["labels"]))
    return {"stored": len(records)}


def listing(query: dict[str, str]) -> dict:
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid_limit", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    records = [
        record
        for record in reversed(stored())
        if all(record.get(key) == query[key] for key in ("alertname", "status") if key in query)
    ]
    return {"count": len(records), "results": records[:limit]}


# --- WSGI ----------------------------------------------------------------------------------------------


def read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", "the body is too large")
    return environ["wsgi.input"].read(length) if length else b""


def route(environ: dict) -> tuple[HTTPStatus, dict]:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if path == "/health/live" and method == "GET":
        return HTTPStatus.OK, {"status": "healthy"}
    if path.rstrip("/") == "/alerts":
        if method == "POST":
            return HTTPStatus.OK, receive(read_body(environ))
        if method == "GET":
            query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
            return HTTPStatus.OK, listing(query)
        raise BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"{method} is not allowed here")
    raise BadRequest(HTTPStatus.NOT_FOUND, "not_found", f"no such path: {path}")


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    try:
        status, body = route(environ)
    except BadRequest as error:
        status, body = error.status, {"error": {"code": error.code, "message": str(error), "fields": {}}}
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(f"{status.value} {status.phrase}", headers)
    return [data]

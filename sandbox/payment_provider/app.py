"""The payment-provider sandbox: a Stripe-like card processor as a plain WSGI application.

It stands in for an external PSP so that payments can be exercised over real HTTP, with real
timeouts, retries and failures. Every piece of state (charges, refunds, idempotency records, fault
knobs) lives in Redis under one prefix, so any number of workers and threads, and restarts, agree.

Run it (from the repository root):

    gunicorn sandbox.payment_provider.app:application --bind 127.0.0.1:8190 --workers 1 --threads 16

Environment: REDIS_URL (default redis://127.0.0.1:6379/0), PROVIDER_REDIS_PREFIX (default "provider").
The API and the fault knobs are described in README.md.

Over 500 lines on purpose: the sandbox is one WSGI file with no framework, so a user copying the platform
can read (or replace) the whole stand-in for their provider in one place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from urllib.parse import parse_qs

import redis

from shared.web import json_limits

logger = logging.getLogger("sandbox.payment_provider")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "provider"
MAX_BODY_BYTES = 64 * 1024
MAX_AMOUNT_CENTS = 10**12 - 1  # what a DECIMAL(12, 2) holds
IN_PROGRESS_TTL_SECONDS = 120  # a request that died mid-way frees its key after this long
MAX_LATENCY_MS = 60_000  # well below IN_PROGRESS_TTL_SECONDS: a slow request never loses its key
STORED_ANSWER_TTL_SECONDS = 24 * 3600  # like Stripe: keys are remembered for a day
DEFAULT_HANG_SECONDS = 30.0

SUCCESS_TOKEN = "tok_visa"  # noqa: S105 (public test card tokens, not secrets)
DECLINE_TOKEN = "tok_chargeDeclined"  # noqa: S105
KNOWN_TOKENS = frozenset({SUCCESS_TOKEN, DECLINE_TOKEN})

# Atomically spend one unit of the failure budget: 1 if this request must fail, 0 otherwise.
_SPEND_FAILURE_BUDGET = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left > 0 then
    redis.call('DECR', KEYS[1])
    return 1
end
return 0
"""


class ApiError(Exception):
    """An answer in Stripe's error shape: `{"error": {"type", "code", "message", ...}}`."""

    def __init__(self, status: int, error_type: str, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": error_type, "code": code, "message": message, **extra}}


def invalid_request(code: str, message: str, **extra) -> ApiError:
    return ApiError(400, "invalid_request_error", code, message, **extra)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    params: dict[str, str] = field(default_factory=dict)
    latency_seconds: float = 0.0

    @classmethod
    def from_environ(cls, environ: dict) -> Request:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        query = {key: values[-1] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO", "/") or "/",
            query=query,
            headers=headers,
            raw_body=_read_body(environ),
        )

    def json(self) -> dict:
        if not self.raw_body.strip():
            return {}
        try:
            body = json_limits.loads(self.raw_body)  # bounded nesting: a 2 KB `[[[...` is a 400, not a crash
        except (UnicodeDecodeError, ValueError) as exc:
            raise invalid_request("malformed_json", f"The body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise invalid_request("malformed_json", "The body must be a JSON object.")
        return body


def _read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise invalid_request("body_too_large", f"Bodies are limited to {MAX_BODY_BYTES} bytes.")
    return environ["wsgi.input"].read(length) if length > 0 else b""


@dataclass
class Response:
    status: int
    body: dict
    headers: list[tuple[str, str]] = field(default_factory=list)


# Money


def parse_amount(value: object, *, name: str = "amount") -> int:
    """A positive amount with at most two decimals ("12.50", 12.5 or 12), returned in cents."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid_request(
            "parameter_invalid", f"{name} must be a decimal string like '12.50'.", param=name
        )
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise invalid_request(
            "parameter_invalid", f"{name} must be a decimal string like '12.50'.", param=name
        ) from exc
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:
        raise invalid_request(
            "parameter_invalid", f"{name} must be positive with at most two decimals.", param=name
        )
    cents = int(amount * 100)
    if cents > MAX_AMOUNT_CENTS:
        raise invalid_request("parameter_invalid", f"{name} is too large.", param=name)
    return cents


def format_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# Redis state


class Store:
    """Every Redis key of one sandbox, all under `<prefix>:`."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self._spend_budget = client.register_script(_SPEND_FAILURE_BUDGET)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # objects

    def load(self, kind: str, object_id: str) -> dict | None:
        raw = self.redis.get(self.key(kind, object_id))
        return json.loads(raw) if raw else None

    def load_all(self, kind: str) -> list[dict]:
        ids = self.redis.lrange(self.key(f"{kind}s"), 0, -1)
        if not ids:
            return []
        raws = self.redis.mget([self.key(kind, object_id) for object_id in ids])
        return [json.loads(raw) for raw in raws if raw]

    # fault knobs

    def faults(self) -> dict:
        raw = self.redis.get(self.key("faults"))
        knobs = {**DEFAULT_FAULTS, **(json.loads(raw) if raw else {})}
        knobs["failure_budget"] = int(self.redis.get(self.key("faults", "failure_budget")) or 0)
        return knobs

    def spend_failure_budget(self) -> bool:
        return bool(self._spend_budget(keys=[self.key("faults", "failure_budget")]))

    def in_flight(self) -> int:
        """Requests holding their idempotency key right now (reserved, not yet answered)."""
        raws = [
            self.redis.get(key) for key in self.redis.scan_iter(match=self.key("idempotency", "*"), count=500)
        ]
        return sum(1 for raw in raws if raw and json.loads(raw)["state"] == "in_progress")

    def wipe(self) -> int:
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=500))
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])
        return len(keys)


DEFAULT_FAULTS = {"latency_ms": 0, "error_rate": 0.0, "hang_rate": 0.0, "hang_seconds": DEFAULT_HANG_SECONDS}


# Idempotency (Stripe semantics)


class IdempotentCall:
    """The lifetime of one `Idempotency-Key`: reserved atomically, then answered once and for all.

    The reservation is a `SET NX`: of two concurrent requests with one key exactly one proceeds; the
    other is told the key is in use (409). Once answered, the same key with the same parameters gets
    the stored answer again (status and body); with other parameters, an idempotency error (400).
    """

    def __init__(self, store: Store, request: Request, body: dict) -> None:
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            raise invalid_request("idempotency_key_missing", "The Idempotency-Key header is required.")
        if len(key) > 255:
            raise invalid_request("idempotency_key_invalid", "The Idempotency-Key is at most 255 characters.")
        self.store = store
        self.key = key
        self.redis_key = store.key("idempotency", key)
        canonical = json.dumps({"path": request.path, "body": body}, sort_keys=True, separators=(",", ":"))
        self.fingerprint = hashlib.sha256(canonical.encode()).hexdigest()

    def reserve(self) -> Response | None:
        """None if this request now owns the key; otherwise the answer to give instead."""
        record = {"state": "in_progress", "fingerprint": self.fingerprint}
        for _ in range(3):  # the record may expire between the failed SET NX and the GET
            if self.store.redis.set(self.redis_key, json.dumps(record), nx=True, ex=IN_PROGRESS_TTL_SECONDS):
                return None
            raw = self.store.redis.get(self.redis_key)
            if raw is not None:
                return self._answer_for_existing(json.loads(raw))
        raise ApiError(409, "idempotency_error", "idempotency_key_in_use", "Try again shortly.")

    def _answer_for_existing(self, record: dict) -> Response:
        if record["fingerprint"] != self.fingerprint:
            raise ApiError(
                400,
                "idempotency_error",
                "idempotency_key_reused",
                "Keys for idempotent requests can only be used with the same parameters they were "
                "first used with.",
            )
        if record["state"] == "in_progress":
            raise ApiError(
                409,
                "idempotency_error",
                "idempotency_key_in_use",
                "There is currently another in-progress request using this Idempotency-Key. Try again later.",
            )
        return Response(record["status"], record["body"], [("Idempotent-Replayed", "true")])

    def remember(self, pipe, status: int, body: dict) -> None:
        """Store the answer (in the caller's MULTI, with the objects it created)."""
        record = {"state": "done", "fingerprint": self.fingerprint, "status": status, "body": body}
        pipe.set(self.redis_key, json.dumps(record), ex=STORED_ANSWER_TTL_SECONDS)

    def release(self) -> None:
        """Give the key back: the request ended before any effect (it may be sent again)."""
        self.store.redis.delete(self.redis_key)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _simulate_processing(request: Request) -> None:
    """The configured latency, spent while the request owns its idempotency key (like a slow PSP)."""
    if request.latency_seconds > 0:
        time.sleep(request.latency_seconds)


def _run_idempotently(store: Store, request: Request, body: dict, perform) -> Response:
    """Reserve the key, do the work (which stores its answer with its effects) or give the key back."""
    call = IdempotentCall(store, request, body)
    earlier_answer = call.reserve()
    if earlier_answer is not None:
        return earlier_answer
    try:
        _simulate_processing(request)
        return perform(call)
    except BaseException:
        call.release()  # nothing was stored: the same request may be sent again
        raise


# /v1/charges


def create_charge(store: Store, request: Request) -> Response:
    body = request.json()
    cents = parse_amount(body.get("amount"))
    currency = body.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise invalid_request("parameter_invalid", "currency must be a three-letter code.", param="currency")
    source = body.get("source")
    if not isinstance(source, str) or not source:
        raise invalid_request("parameter_missing", "source (a card token) is required.", param="source")
    if source not in KNOWN_TOKENS:
        raise invalid_request("resource_missing", f"No such token: '{source}'.", param="source")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise invalid_request("parameter_invalid", "description must be a short string.", param="description")

    def perform(call: IdempotentCall) -> Response:
        succeeded = source == SUCCESS_TOKEN
        charge = {
            "id": _new_id("ch"),
            "object": "charge",
            "amount": format_cents(cents),
            "amount_refunded": "0.00",
            "currency": currency.upper(),
            "captured": succeeded,
            "paid": succeeded,
            "refunded": False,
            "status": "succeeded" if succeeded else "failed",
            "failure_code": None if succeeded else "card_declined",
            "source": source,
            "description": description,
            "idempotency_key": call.key,
            "created": int(time.time()),
        }
        if succeeded:
            status, answer = 200, charge
        else:
            status = 402
            answer = ApiError(
                402,
                "card_error",
                "card_declined",
                "Your card was declined.",
                decline_code="generic_decline",
                charge=charge["id"],
            ).body
        with store.redis.pipeline(transaction=True) as pipe:
            pipe.set(store.key("charge", charge["id"]), json.dumps(charge))
            pipe.rpush(store.key("charges"), charge["id"])
            if succeeded:
                pipe.hincrby(store.key("ledger"), "charges", 1)
                pipe.hincrby(store.key("ledger"), "captured_cents", cents)
            else:
                pipe.hincrby(store.key("ledger"), "declined", 1)
            call.remember(pipe, status, answer)
            pipe.execute()
        return Response(status, answer)

    return _run_idempotently(store, request, body, perform)


def retrieve_charge(store: Store, request: Request) -> Response:
    charge = store.load("charge", request.params["charge_id"])
    if charge is None:
        raise ApiError(404, "invalid_request_error", "resource_missing", "No such charge.")
    return Response(200, charge)


def list_charges(store: Store, request: Request) -> Response:
    """Charges, filtered by any of `idempotency_key`, `description`, `status`.

    Asked by idempotency key while a request with that key is still being processed, the answer is
    409 (like a second POST would get): "none yet" would be a lie the caller could act on.
    """
    key = request.query.get("idempotency_key")
    if key is not None:
        raw = store.redis.get(store.key("idempotency", key))
        if raw is not None and json.loads(raw)["state"] == "in_progress":
            raise ApiError(
                409,
                "idempotency_error",
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed. Try again later.",
            )
    charges = store.load_all("charge")
    for name in ("idempotency_key", "description", "status"):
        if name in request.query:
            charges = [charge for charge in charges if charge.get(name) == request.query[name]]
    return Response(200, {"object": "list", "data": charges, "count": len(charges)})


# /v1/refunds


def create_refund(store: Store, request: Request) -> Response:
    body = request.json()
    charge_id = body.get("charge")
    if not isinstance(charge_id, str) or not charge_id:
        raise invalid_request("parameter_missing", "charge (a charge id) is required.", param="charge")
    requested_cents = parse_amount(body["amount"]) if body.get("amount") is not None else None

    def perform(call: IdempotentCall) -> Response:
        charge_key = store.key("charge", charge_id)
        # WATCH the charge: two refunds of one charge under different keys must not both pass the check.
        with store.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(charge_key)
                    raw_charge = pipe.get(charge_key)
                    pipe.multi()
                    status, answer = _refund(pipe, store, raw_charge, requested_cents)
                    call.remember(pipe, status, answer)
                    pipe.execute()
                    return Response(status, answer)
                except redis.WatchError:
                    continue

    return _run_idempotently(store, request, body, perform)


def _refund(pipe, store: Store, raw_charge: str | None, requested_cents: int | None) -> tuple[int, dict]:
    """Queue the refund's writes on `pipe` (in MULTI); returns the answer, an error one included."""
    if raw_charge is None:
        return 400, invalid_request("resource_missing", "No such charge.", param="charge").body
    charge = json.loads(raw_charge)
    if charge["status"] != "succeeded":
        return 400, invalid_request("charge_not_captured", "Only a captured charge can be refunded.").body
    refundable = _cents(charge["amount"]) - _cents(charge["amount_refunded"])
    if refundable <= 0:
        return 400, invalid_request("charge_already_refunded", "The charge has already been refunded.").body
    cents = refundable if requested_cents is None else requested_cents
    if cents > refundable:
        message = (
            f"Refund amount ({format_cents(cents)}) is greater than the unrefunded amount on the charge "
            f"({format_cents(refundable)})."
        )
        return 400, invalid_request("amount_too_large", message, param="amount").body
    refund = {
        "id": _new_id("re"),
        "object": "refund",
        "status": "succeeded",
        "charge": charge["id"],
        "amount": format_cents(cents),
        "currency": charge["currency"],
        "created": int(time.time()),
    }
    charge["amount_refunded"] = format_cents(_cents(charge["amount_refunded"]) + cents)
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    pipe.set(store.key("charge", charge["id"]), json.dumps(charge))
    pipe.set(store.key("refund", refund["id"]), json.dumps(refund))
    pipe.rpush(store.key("refunds"), refund["id"])
    pipe.hincrby(store.key("ledger"), "refunds", 1)
    pipe.hincrby(store.key("ledger"), "refunded_cents", cents)
    return 200, refund


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def list_refunds(store: Store, request: Request) -> Response:
    refunds = store.load_all("refund")
    if "charge" in request.query:
        refunds = [refund for refund in refunds if refund["charge"] == request.query["charge"]]
    return Response(200, {"object": "list", "data": refunds, "count": len(refunds)})


def ledger(store: Store, request: Request) -> Response:
    """Totals for invariant checks: successful charges, declines, refunds and the money moved."""
    counters = {key: int(value) for key, value in store.redis.hgetall(store.key("ledger")).items()}
    return Response(
        200,
        {
            "charges": counters.get("charges", 0),
            "declined": counters.get("declined", 0),
            "refunds": counters.get("refunds", 0),
            "captured_total": format_cents(counters.get("captured_cents", 0)),
            "refunded_total": format_cents(counters.get("refunded_cents", 0)),
        },
    )


# /_sandbox: the fault knobs and a reset, never faulted themselves


def get_faults(store: Store, request: Request) -> Response:
    return Response(200, store.faults())


def put_faults(store: Store, request: Request) -> Response:
    """Replace the knobs (PUT semantics: a knob left out goes back to its default)."""
    body = request.json()
    unknown = set(body) - {*DEFAULT_FAULTS, "failure_budget"}
    if unknown:
        raise invalid_request("parameter_unknown", f"Unknown knobs: {', '.join(sorted(unknown))}.")
    knobs = {
        "latency_ms": _number(body, "latency_ms", 0, MAX_LATENCY_MS, integer=True),
        "error_rate": _number(body, "error_rate", 0, 1),
        "hang_rate": _number(body, "hang_rate", 0, 1),
        "hang_seconds": _number(body, "hang_seconds", 0, 10 * 60),
    }
    budget = _number(body, "failure_budget", 0, 10**6, integer=True)
    with store.redis.pipeline(transaction=True) as pipe:
        pipe.set(store.key("faults"), json.dumps(knobs))
        pipe.set(store.key("faults", "failure_budget"), int(budget))
        pipe.execute()
    logger.info("fault knobs set: %s, failure_budget=%s", knobs, budget)
    return Response(200, store.faults())


def _number(body: dict, name: str, low: float, high: float, *, integer: bool = False) -> float:
    value = body.get(name, DEFAULT_FAULTS.get(name, 0))
    valid_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not valid_type or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise invalid_request("parameter_invalid", f"{name} must be {kind} from {low} to {high}.", param=name)
    return value


def delete_faults(store: Store, request: Request) -> Response:
    store.redis.delete(store.key("faults"), store.key("faults", "failure_budget"))
    return Response(200, store.faults())


def reset(store: Store, request: Request) -> Response:
    """Forget everything under this sandbox's prefix (charges, refunds, keys, knobs, counters)."""
    return Response(200, {"deleted_keys": store.wipe()})


def stats(store: Store, request: Request) -> Response:
    """How many card API calls arrived, how many a fault answered, how many are being processed now."""
    counters = {key: int(value) for key, value in store.redis.hgetall(store.key("stats")).items()}
    return Response(
        200,
        {
            "requests": counters.get("requests", 0),
            "faulted": counters.get("faulted", 0),
            "in_flight": store.in_flight(),
        },
    )


def health_live(store: Store, request: Request) -> Response:
    return Response(200, {"status": "healthy"})


def health_ready(store: Store, request: Request) -> Response:
    try:
        store.redis.ping()
    except redis.RedisError as exc:
        return Response(503, {"status": "unhealthy", "redis": f"{type(exc).__name__}: {exc}"})
    return Response(200, {"status": "healthy"})


# Faults


def _apply_faults(store: Store, request: Request) -> Response | None:
    """Decide whether this card-processing call fails before doing anything; set its latency otherwise.

    In order: the failure budget (deterministic: the next N requests fail), then a hang (sleep, then
    500), then a plain 500. Latency is spent later, while the request owns its idempotency key.
    """
    knobs = store.faults()
    if store.spend_failure_budget():
        return _fault(store, "failure budget")
    if knobs["hang_rate"] and random.random() < knobs["hang_rate"]:  # noqa: S311 (not cryptography)
        time.sleep(knobs["hang_seconds"])
        return _fault(store, "hang")
    if knobs["error_rate"] and random.random() < knobs["error_rate"]:  # noqa: S311
        return _fault(store, "error rate")
    request.latency_seconds = knobs["latency_ms"] / 1000
    return None


def _fault(store: Store, why: str) -> Response:
    store.redis.hincrby(store.key("stats"), "faulted", 1)
    return Response(500, ApiError(500, "api_error", "sandbox_fault", f"Injected failure ({why}).").body)


# Routing

Handler = Callable[[Store, Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    faulted: bool = False  # the fault knobs apply: the card-processing calls only
    counted: bool = False  # counted in /_sandbox/stats `requests`: every card API call


def _routes() -> list[Route]:
    api = {"counted": True}
    table = [
        ("POST", r"/v1/charges", create_charge, {"faulted": True, **api}),
        ("POST", r"/v1/refunds", create_refund, {"faulted": True, **api}),
        # Reads are the tests' (and reconciliation's) window on what really happened: never faulted,
        # so "was anything charged?" can be asked while the provider is "down".
        ("GET", r"/v1/charges", list_charges, api),
        ("GET", r"/v1/charges/(?P<charge_id>[A-Za-z0-9_]+)", retrieve_charge, api),
        ("GET", r"/v1/refunds", list_refunds, api),
        ("GET", r"/v1/ledger", ledger, {}),
        ("GET", r"/_sandbox/faults", get_faults, {}),
        ("PUT", r"/_sandbox/faults", put_faults, {}),
        ("DELETE", r"/_sandbox/faults", delete_faults, {}),
        ("GET", r"/_sandbox/stats", stats, {}),
        ("POST", r"/_sandbox/reset", reset, {}),
        ("GET", r"/health/live", health_live, {}),
        ("GET", r"/health/ready", health_ready, {}),
    ]
    return [
        Route(method, re.compile(pattern + "/?"), handler, **flags)
        for method, pattern, handler, flags in table
    ]


class PaymentProvider:
    """The WSGI application."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.routes = _routes()

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        try:
            request = Request.from_environ(environ)
            response = self.dispatch(request)
        except ApiError as exc:
            response = Response(exc.status, exc.body)
        except Exception:
            logger.exception("sandbox request failed")
            response = Response(500, ApiError(500, "api_error", "internal", "Internal sandbox error.").body)
        payload = json.dumps(response.body).encode()
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *response.headers,
        ]
        start_response(status, headers)
        return [payload]

    def dispatch(self, request: Request) -> Response:
        path_matches = [(route, route.pattern.fullmatch(request.path)) for route in self.routes]
        path_matches = [(route, match) for route, match in path_matches if match]
        if not path_matches:
            raise ApiError(404, "invalid_request_error", "not_found", f"Unrecognized path {request.path}.")
        for route, match in path_matches:
            if route.method == request.method:
                request.params = match.groupdict()
                if route.counted:
                    self.store.redis.hincrby(self.store.key("stats"), "requests", 1)
                if route.faulted:
                    fault = _apply_faults(self.store, request)
                    if fault is not None:
                        return fault
                return route.handler(self.store, request)
        raise ApiError(
            405, "invalid_request_error", "method_not_allowed", f"{request.method} is not allowed."
        )


def create_app(*, redis_url: str | None = None, prefix: str | None = None) -> PaymentProvider:
    """A sandbox on `redis_url` under `prefix`; unset values come from REDIS_URL / PROVIDER_REDIS_PREFIX."""
    client = redis.Redis.from_url(
        redis_url or os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    return PaymentProvider(Store(client, prefix or os.environ.get("PROVIDER_REDIS_PREFIX", DEFAULT_PREFIX)))


application = create_app()

"""Calls from one service to another (or to the payment provider), made safe to depend on.

Each call has connect/read timeouts; transient failures (connection errors, timeouts, 5xx, 429) are
retried with jittered exponential backoff, but only for requests that are safe to repeat (idempotent
methods, or any request carrying an `Idempotency-Key`); and every downstream sits behind its own
pybreaker circuit breaker whose state lives in Redis, so all processes of a service open and close
the circuit together. While the circuit is open, calls fail at once instead of waiting on timeouts,
and the caller's `fallback` (if given) answers instead.

The breakers' metrics live here too: `circuit_breaker_transitions_total` counted by the process that
changed a state, and `circuit_breaker_state`, read from Redis when the web `/metrics` is scraped
(BreakerStateCollector, registered by the `shared` app).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import pybreaker
import requests
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared.observability import context

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# Names and labels are a contract with the alert rules and dashboards (shared.observability.metrics).
BREAKER_TRANSITIONS = Counter(
    "circuit_breaker_transitions",
    "Changes of a downstream's shared circuit breaker state, counted once by the process that made them.",
    ["downstream", "to"],
)
BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


class TransientError(Exception):
    """The downstream may answer if asked again (it timed out, refused, or answered 5xx/429)."""


class DownstreamUnavailable(Exception):
    """The downstream could not be used: its circuit is open, or it kept failing."""

    def __init__(self, downstream: str, reason: str, *, circuit_open: bool = False) -> None:
        super().__init__(f"{downstream} is unavailable: {reason}")
        self.downstream = downstream
        self.reason = reason
        # True when the request never left this process (so it cannot have had any effect downstream).
        self.circuit_open = circuit_open


def _breaker_namespace(name: str) -> str:
    return f"breaker:{name}"


class _CountedRedisStorage(pybreaker.CircuitRedisStorage):
    """The shared breaker state, counting each real change once (circuit_breaker_transitions_total).

    Counted here rather than in a pybreaker listener: pybreaker notifies listeners in every process
    that merely *notices* a state another process wrote, so a listener would count one transition
    once per process. SET ... GET tells the one writer that changed the value apart from the others.
    """

    def __init__(self, name: str, redis) -> None:
        self.downstream = name  # before pybreaker's constructor, which initializes the state in Redis
        super().__init__(pybreaker.STATE_CLOSED, redis, namespace=_breaker_namespace(name))

    def _initialize_redis_state(self, state: str) -> None:
        # pybreaker's own lets a RedisError out of the constructor: a process whose first call to a
        # downstream came while Redis was down would fail that call. Missing keys read as closed anyway.
        try:
            super()._initialize_redis_state(state)
        except RedisError:
            logger.warning("breaker state not initialized (Redis)", extra={"downstream": self.downstream})

    @property
    def state(self) -> str:
        return pybreaker.CircuitRedisStorage.state.fget(self)

    @state.setter
    def state(self, state: str) -> None:
        try:
            previous = self._redis.set(self._namespace("state"), str(state), get=True)
        except RedisError:
            logger.exception("breaker state not stored", extra={"downstream": self.downstream})
            return
        # No stored state reads as closed, as pybreaker's own fallback does.
        previous = previous.decode() if isinstance(previous, bytes) else (previous or pybreaker.STATE_CLOSED)
        if previous != str(state):
            BREAKER_TRANSITIONS.labels(downstream=self.downstream, to=str(state)).inc()


class _QuietWhileRedisIsSkipped(logging.Filter):
    """pybreaker logs every RedisError with its traceback; a call the gate skipped is no news (the gate
    logged the outage once, shared.redis_gate)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from shared.redis_gate import RedisSkipped

        return not (record.exc_info and isinstance(record.exc_info[1], RedisSkipped))


logging.getLogger("pybreaker").addFilter(_QuietWhileRedisIsSkipped())


class _BreakerLog(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state) -> None:
        logger.warning(
            "circuit breaker state changed",
            extra={"downstream": cb.name, "from": getattr(old_state, "name", None), "to": new_state.name},
        )


class ServiceClient:
    """A client for one downstream (`name`), shareable across threads."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        redis,
        connect_timeout: float = 0.5,
        read_timeout: float = 3.0,
        attempts: int = 3,
        fail_max: int = 5,
        reset_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.attempts = attempts
        self.headers = headers or {}
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            state_storage=_CountedRedisStorage(name, redis),
            listeners=[_BreakerLog()],
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        fallback: Callable[[Exception], Any] | None = None,
        **kwargs,
    ) -> requests.Response | Any:
        """Send a request through retries and the breaker. 4xx answers are returned, not raised."""
        try:
            return self.breaker.call(self._send_with_retries, method.upper(), path, kwargs)
        except (pybreaker.CircuitBreakerError, TransientError) as exc:
            # pybreaker raises CircuitBreakerError both when refusing a call (nothing sent) and when the
            # failing call that trips it ends (sent; the transport error is then its __context__).
            circuit_open = isinstance(exc, pybreaker.CircuitBreakerError) and exc.__context__ is None
            reason = "circuit open" if circuit_open else str(exc.__context__ or exc)
            if fallback is not None:
                logger.warning("using fallback", extra={"downstream": self.name, "reason": reason})
                return fallback(exc)
            raise DownstreamUnavailable(self.name, reason, circuit_open=circuit_open) from exc

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def _send_with_retries(self, method: str, path: str, kwargs: dict) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        repeatable = method in IDEMPOTENT_METHODS or "Idempotency-Key" in headers
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts if repeatable else 1),
            wait=wait_random_exponential(multiplier=0.1, max=2.0),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        )
        return retrying(self._send_once, method, path, headers, kwargs)

    def _send_once(self, method: str, path: str, headers: dict, kwargs: dict) -> requests.Response:
        correlation_id = context.get_correlation_id()
        if correlation_id:
            headers = {"X-Request-ID": correlation_id, **headers}
        try:
            response = self.session.request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"HTTP {response.status_code} from {self.name}")
        return response


_clients: dict[tuple[str, str], ServiceClient] = {}


def service_client(name: str, base_url: str, **options) -> ServiceClient:
    """The process-wide client for a downstream, its breaker state shared through the service's Redis."""
    key = (name, base_url)
    if key not in _clients:
        from shared.redis_gate import redis_connection

        _clients[key] = ServiceClient(name, base_url, redis=redis_connection(), **options)
    return _clients[key]


def service_url(name: str) -> str:
    """Where the downstream `name` is (settings.SERVICE_URLS, from `<NAME>_URL`), or a clear error."""
    from django.conf import settings

    try:
        return settings.SERVICE_URLS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"{name.upper()}_URL is not set (or {name} is not among this service's downstreams)"
        ) from None


def known_downstreams() -> list[str]:
    """Downstreams this process has a client for (added to the configured ones by /metrics)."""
    return sorted({name for name, _url in _clients})


def breaker_states(downstreams: list[str]) -> dict[str, str]:
    """The shared state of each downstream's breaker, as stored in Redis ("closed" when never set)."""
    from shared.redis_gate import redis_connection

    suffix = f"{pybreaker.CircuitRedisStorage.BASE_NAMESPACE}:state"
    keys = [f"{_breaker_namespace(name)}:{suffix}" for name in downstreams]
    values = redis_connection().mget(keys) if keys else []
    return {
        name: value.decode() if isinstance(value, bytes) else (value or pybreaker.STATE_CLOSED)
        for name, value in zip(downstreams, values, strict=True)
    }


def forget_clients() -> None:
    """Drop the cached clients (tests that point a downstream somewhere new between cases)."""
    _clients.clear()


def breaker_downstreams() -> list[str]:
    """The downstreams whose breaker state /metrics reports: the configured ones and any called since."""
    from django.conf import settings

    return [*getattr(settings, "CIRCUIT_BREAKER_DOWNSTREAMS", []), *known_downstreams()]


class BreakerStateCollector(Collector):
    """circuit_breaker_state{downstream}: read from the breaker state every process shares in Redis."""

    def __init__(self, downstreams: Callable[[], Iterable[str]]) -> None:
        self.downstreams = downstreams

    def describe(self) -> list:
        return []

    def collect(self) -> Iterable:
        help_text = "Circuit breaker state: 0 closed, 1 half-open, 2 open."
        family = GaugeMetricFamily("circuit_breaker_state", help_text, labels=["downstream"])
        try:
            states = breaker_states(sorted(set(self.downstreams())))
        except Exception as exc:  # Redis down: the breakers fall back to closed, the gauge says nothing
            logger.warning("breaker state unreadable; gauge skipped", extra={"error": str(exc)})
            return []
        for downstream, state in states.items():
            family.add_metric([downstream], BREAKER_STATE_VALUES.get(state, BREAKER_STATE_VALUES["closed"]))
        return [family]

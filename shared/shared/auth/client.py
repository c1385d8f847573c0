"""A service as a client of other services' `/internal/` routes: its own token from identity.

identity's OAuth 2.0 client-credentials grant (`POST /internal/v1/oauth/token/` on identity's own port,
never routed by the gateway) exchanges the service's client id and secret (settings.SERVICE_CLIENT) for a
short-lived service token (`SERVICE_TOKEN_SECONDS`, 5 minutes). The token is kept in this process and
reused until shortly before it expires, so a page that calls five services asks identity once, not five
times, and not on every page view.

    from shared.auth.client import service_token
    headers = {"Authorization": f"Bearer {service_token('saga:read')}"}

The call goes through shared.http's breaker-wrapped client for identity, so a down identity fails fast.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from shared.http import DownstreamUnavailable, ServiceClient

logger = logging.getLogger(__name__)

TOKEN_PATH = "/internal/v1/oauth/token/"  # noqa: S105 (a path, not a secret)
# A token is replaced this long before it expires (at most half its life): a call that starts with it
# must not reach the other service after it expired.
REFRESH_MARGIN_SECONDS = 30.0


class ServiceTokenUnavailable(Exception):
    """No token could be had: identity is unreachable, or refused this service's credentials."""


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # time.monotonic() after which a new one is fetched


class ServiceTokenClient:
    """Tokens of one client (`client_id`, `client_secret`) for one `scope`, from identity at `identity`.

    Thread-safe: concurrent callers share one request to identity.
    """

    def __init__(
        self, identity: ServiceClient, *, client_id: str, client_secret: str, scope: str = ""
    ) -> None:
        self.identity = identity
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        """A current token, cached or fresh from identity. Raises ServiceTokenUnavailable."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._token.renew_at:
                self._token = self._fetch()
            return self._token.value

    def forget(self) -> None:
        """Drop the cached token (another service refused it: identity's key may have changed)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        asked_at = time.monotonic()
        try:
            answer = self.identity.post(TOKEN_PATH, data=form)
        except DownstreamUnavailable as exc:
            raise ServiceTokenUnavailable(f"identity did not answer: {exc.reason}") from exc
        if answer.status_code != 200:
            logger.error(
                "identity refused this service's client credentials",
                extra={"status": answer.status_code, "client_id": self.client_id},
            )
            raise ServiceTokenUnavailable(
                f"identity refused the credentials of {self.client_id}: HTTP {answer.status_code}"
            )
        try:
            body = answer.json()
            value, lifetime = str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceTokenUnavailable("identity answered an unreadable token") from exc
        # Counted from when it was asked for: identity's clock started no later than that.
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        return _Token(value=value, renew_at=asked_at + lifetime - margin)


_clients: dict[tuple[str, str, str], ServiceTokenClient] = {}
_clients_lock = threading.Lock()


def token_client(scope: str = "") -> ServiceTokenClient:
    """This service's process-wide token client for `scope` (settings.SERVICE_CLIENT, SERVICE_URLS)."""
    from django.conf import settings

    from shared.http import service_client, service_url

    identity_url = service_url("identity")
    key = (settings.SERVICE_CLIENT["ID"], scope, identity_url)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = ServiceTokenClient(
                service_client("identity", identity_url),
                client_id=settings.SERVICE_CLIENT["ID"],
                client_secret=settings.SERVICE_CLIENT["SECRET"],
                scope=scope,
            )
        return _clients[key]


def service_token(scope: str = "") -> str:
    """A current service token of this service for `scope`. Raises ServiceTokenUnavailable."""
    return token_client(scope).token()


def forget_token_clients() -> None:
    """Drop every cached client and token (tests that point identity somewhere new between cases)."""
    with _clients_lock:
        _clients.clear()

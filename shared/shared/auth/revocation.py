"""The revocation list: which tokens identity has withdrawn before they expire (no Django here).

Tokens are checked locally (shared.auth.tokens), so withdrawing one needs a list every verifier reads.
identity writes it to Redis; every service and the gateway's verifier read it on each request, one
round trip for both keys:

- `auth:user-version:<user_id>` = the user's current `auth_version`. identity raises it when a user's
  role changes, the account is deactivated or its password changes; a token with an older `ver` is
  refused, so a demoted member of staff loses staff rights at once everywhere.
- `auth:sign-in-ended:<sid>`: the sign-in (an API login's refresh chain, or an admin single sign-on
  session) was ended by logout, refresh-token reuse or deactivation; every token minted for it is refused.

Entries live as long as the longest token they could refuse, then expire. identity's database is the
authority (it re-publishes recent entries periodically, so a write lost while Redis was away comes back).

When Redis does not answer within `timeout`, the check cannot be made. The caller chooses the policy:
`fail_open` (API access tokens: a Redis outage must not refuse every customer; a withdrawn access token
then keeps working until it expires, `JWT_ACCESS_MINUTES` at most) or fail closed (admin sign-on and
Flower: staff rights are not handed out unchecked; `RevocationUnavailable` becomes a fast 503). After a
failure, Redis is not asked again for `retry_after` seconds, so a hung Redis costs one timeout per
process, not one per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pybreaker
import redis
from prometheus_client import Counter

from shared.auth.tokens import TokenRefused

logger = logging.getLogger(__name__)

USER_VERSION_KEY = "auth:user-version:{user_id}"
SIGN_IN_ENDED_KEY = "auth:sign-in-ended:{sign_in_id}"

UNCHECKED = Counter(
    "auth_revocation_unchecked_total",
    "Tokens accepted without a revocation check because Redis did not answer (fail-open policy).",
)
REFUSED_UNCHECKED = Counter(
    "auth_revocation_unavailable_total",
    "Requests refused with 503 because the revocation list could not be read (fail-closed policy).",
)


class RevocationUnavailable(Exception):
    """The revocation list could not be read (Redis down, hung or too slow)."""


class _StateLog(pybreaker.CircuitBreakerListener):
    def state_change(self, cb, old_state, new_state) -> None:
        name = getattr(new_state, "name", str(new_state))
        level = logging.INFO if name == pybreaker.STATE_CLOSED else logging.WARNING
        logger.log(level, "token revocation list %s", "reachable" if level == logging.INFO else "unreachable")


class RevocationList:
    """Read and write the revocation entries in Redis at `redis_url`."""

    def __init__(self, redis_url: str, *, timeout: float = 0.25, retry_after: float = 5.0) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=1, reset_timeout=retry_after, listeners=[_StateLog()]
        )

    # --- reading -------------------------------------------------------------------------------------

    def check(self, claims: dict, *, fail_open: bool) -> None:
        """Raise TokenRefused if the token of `claims` was withdrawn; RevocationUnavailable if that
        cannot be known and the policy is to fail closed."""
        try:
            reason = self.refusal(claims)
        except RevocationUnavailable:
            if not fail_open:
                REFUSED_UNCHECKED.inc()
                raise
            UNCHECKED.inc()
            return
        if reason:
            raise TokenRefused(reason, code="token_revoked")

    def refusal(self, claims: dict) -> str | None:
        """Why the token has been withdrawn, or None. Raises RevocationUnavailable."""
        user_id, sign_in = str(claims.get("user_id", "")), claims.get("sid")
        keys = [USER_VERSION_KEY.format(user_id=user_id)]
        if sign_in:
            keys.append(SIGN_IN_ENDED_KEY.format(sign_in_id=sign_in))
        values = self._read(keys)
        current = values[0]
        if current is not None and int(claims.get("ver", 0)) < int(current):
            return "The account's access changed since this token was issued: sign in again."
        if sign_in and values[1] is not None:
            return "This sign-in has ended: sign in again."
        return None

    def _read(self, keys: list[str]) -> list:
        try:
            return self._breaker.call(self.redis.mget, keys)
        except (redis.RedisError, pybreaker.CircuitBreakerError) as exc:
            raise RevocationUnavailable(str(exc)) from exc

    # --- writing (identity) --------------------------------------------------------------------------

    def publish_user_version(self, *, user_id: str, version: int, ttl_seconds: int) -> None:
        """Refuse every token of `user_id` older than `version` for the next `ttl_seconds`."""
        self.redis.set(USER_VERSION_KEY.format(user_id=user_id), version, ex=max(1, ttl_seconds))

    def publish_sign_ins_ended(self, sign_in_ids: Iterable[str], *, ttl_seconds: int) -> None:
        """Refuse every token minted for these sign-ins for the next `ttl_seconds`."""
        pipeline = self.redis.pipeline(transaction=False)
        for sign_in_id in sign_in_ids:
            pipeline.set(SIGN_IN_ENDED_KEY.format(sign_in_id=sign_in_id), 1, ex=max(1, ttl_seconds))
        pipeline.execute()


__all__ = ["RevocationList", "RevocationUnavailable", "TokenRefused"]

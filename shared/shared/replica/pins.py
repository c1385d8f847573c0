"""Read-your-writes: after a write, its reader reads the primary until the replica has replayed it.

A pin is the primary's WAL write position right after a write, kept in Redis under
`replica-pin:<service>:<scope>`: the highest one stays (two writes of one user may finish in any order).
A scope is a user (`user:<identity user id>`, pinned by shared.replica.middleware after each non-safe
request that succeeded) or a view many readers share (catalog's cached product pages, pinned by every
product write). A lag-tolerant read whose scopes hold a pin the replica has not replayed yet goes to the
primary (shared.replica.reads).

A pin lives REPLICA_MAX_LAG_SECONDS plus two health samples plus 10 s: by then a replica that is not
lagging past the limit has replayed it, and one that is lagging serves nobody.

When Redis cannot record or read a pin (down, hung: shared.redis_gate stands it back), the process
cannot know whom a write concerns: every pinned-scope read it serves goes to the primary for as long as
a pin would have lived.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import DatabaseError, connections
from redis.exceptions import RedisError

from shared.redis_gate import redis_connection
from shared.replica.lsn import lsn_key, lsn_value

logger = logging.getLogger(__name__)

PRIMARY = "default"
# Sets the pin unless a higher one is there, and (re)starts its life either way.
KEEP_HIGHEST = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def pin_seconds() -> int:
    return int(settings.REPLICA_MAX_LAG_SECONDS + 2 * settings.REPLICA_CHECK_SECONDS + 10)


class PinStore:
    """The pins of one service, in Redis, and this process's doubt when Redis failed it."""

    def __init__(
        self,
        service: Callable[[], str],
        redis: Callable = redis_connection,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._redis = redis
        self._clock = clock
        self._doubt_until = 0.0
        self._lock = threading.Lock()

    def key(self, scope: str) -> str:
        return f"replica-pin:{self._service()}:{scope}"

    def record(self, scope: str, lsn: int) -> None:
        """Raises RedisError (RedisSkipped while the gate stands Redis back)."""
        self._redis().eval(KEEP_HIGHEST, 1, self.key(scope), lsn_key(lsn), pin_seconds())

    def highest(self, scopes: Iterable[str]) -> int | None:
        """The highest pin of these scopes, None without any. Raises RedisError."""
        values = self._redis().mget([self.key(scope) for scope in scopes])
        found = [int(value, 16) for value in values if value]
        return max(found) if found else None

    def doubt(self) -> None:
        with self._lock:
            self._doubt_until = self._clock() + pin_seconds()

    def in_doubt(self) -> bool:
        return self._clock() < self._doubt_until


STORE = PinStore(service=lambda: settings.SERVICE_NAME)


def current_wal_position() -> int:
    """The primary's WAL write position: every transaction committed so far ends at or before it."""
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return lsn_value(cursor.fetchone()[0])


def record_write(scope: str, store: PinStore | None = None) -> None:
    """Pin `scope` at the primary's current WAL position: call it once the write has committed (e.g. in
    `transaction.on_commit`). Never raises: a pin it cannot record puts the process in doubt."""
    if not settings.REPLICA_ENABLED:
        return
    store = store or STORE
    try:
        store.record(scope, current_wal_position())
    except (DatabaseError, RedisError) as exc:
        logger.warning(
            "read-your-writes pin not recorded: pinned reads use the primary for a while",
            extra={"scope": scope.partition(":")[0], "error": str(exc)},
        )
        store.doubt()

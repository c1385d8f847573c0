"""The cart store: one Redis hash per user (product id -> quantity), expiring when left alone.

Every write refreshes the expiry. Multi-step changes run as Lua scripts, so they are atomic even when
a customer's two tabs write at once.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from shared.redis_gate import guarded
from shared.web.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

MAX_CART_ITEMS = 50  # an order takes at most 50 lines

# Set one line unless that would make the cart longer than the limit; refresh the expiry.
_SET_ITEM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# Remove the lines an order was made of, but only where the quantity is still the one ordered: a line
# changed while the order was being placed stays in the cart.
_REMOVE_ORDERED = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return redis.call('HLEN', KEYS[1])
"""


@dataclass(frozen=True)
class CartLine:
    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Cart:
    lines: list[CartLine]
    expires_at: datetime | None


def cart_key(user_id: uuid.UUID) -> str:
    # The raw client bypasses the cache's KEY_PREFIX: name the service ourselves.
    return f"orders:cart:{user_id}"


def _redis():
    return get_redis_connection("default")


@contextlib.contextmanager
def _store():
    """The Redis client; an outage answers 503 instead of a server error, at once while Redis is known
    to be failing (shared.redis_gate)."""
    try:
        with guarded("cart"):
            yield _redis()
    except RedisError as exc:
        logger.error("cart store unreachable", exc_info=True)
        raise ServiceUnavailable(
            "The cart is unavailable right now; please try again.", code="cart_unavailable"
        ) from exc


def read(user_id: uuid.UUID) -> Cart:
    with _store() as redis:
        pipeline = redis.pipeline(transaction=True)
        pipeline.hgetall(cart_key(user_id))
        pipeline.pttl(cart_key(user_id))
        raw_lines, ttl_ms = pipeline.execute()
    lines = sorted(
        (
            CartLine(product_id=uuid.UUID(key.decode()), quantity=int(value))
            for key, value in raw_lines.items()
        ),
        key=lambda line: str(line.product_id),
    )
    expires_at = timezone.now() + timedelta(milliseconds=ttl_ms) if lines and ttl_ms > 0 else None
    return Cart(lines=lines, expires_at=expires_at)


def set_line(user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> bool:
    """False if the product is new and the cart is already full."""
    with _store() as redis:
        script = redis.register_script(_SET_ITEM)
        stored = script(
            keys=[cart_key(user_id)],
            args=[str(product_id), quantity, MAX_CART_ITEMS, settings.CART_TTL_SECONDS],
        )
    return bool(stored)


def remove_line(user_id: uuid.UUID, product_id: uuid.UUID) -> None:
    with _store() as redis:
        pipeline = redis.pipeline(transaction=True)
        pipeline.hdel(cart_key(user_id), str(product_id))
        pipeline.expire(cart_key(user_id), settings.CART_TTL_SECONDS)
        pipeline.execute()


def clear(user_id: uuid.UUID) -> None:
    with _store() as redis:
        redis.delete(cart_key(user_id))


def remove_ordered(user_id: uuid.UUID, lines: list[CartLine]) -> None:
    """Take an order's lines out of the cart; lines changed meanwhile stay."""
    args = [value for line in lines for value in (str(line.product_id), str(line.quantity))]
    with _store() as redis:
        redis.register_script(_REMOVE_ORDERED)(keys=[cart_key(user_id)], args=args)

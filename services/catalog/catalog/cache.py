"""The read cache of product responses, invalidated by a catalog version number.

Every cache key contains the current catalog version; every product write bumps it, so all cached
lists and details become unreachable at once (they then expire on their own after
CATALOG_CACHE_SECONDS). A reader reads the version *before* it queries the database, so data it
caches is never older than the version in its key.

A write bumps the version twice: inside its transaction (the writer's next read, even before
commit, misses the cache) and again right after commit (a reader that ran between the first bump and
the commit may have cached the old rows under the new version; the second bump orphans them).

Redis is an optimisation, not a dependency: if it cannot be reached, reads go to the database and the
cache stands back for a few seconds (the process's Redis gate, shared.redis_gate, which every other use
of Redis in the process honours too) so that requests do not each wait for a timeout.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from catalog.selectors import PRODUCT_WRITES
from shared.redis_gate import GATE
from shared.replica.pins import record_write

VERSION_KEY = "products:version"


def _cache_available() -> bool:
    return GATE.available()


def _cache_failed(operation: str, error: Exception) -> None:
    """The cache failed (django_redis wraps Redis' errors): the gate stands every Redis use back."""
    GATE.failed(f"product cache {operation}", error)


def catalog_version() -> int | None:
    """The current version, created if missing; None if the cache cannot be reached."""
    if not _cache_available():
        return None
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            # Start from the clock, not 1: entries cached under an older run's numbers must not match.
            cache.add(VERSION_KEY, time.time_ns(), timeout=None)
            version = cache.get(VERSION_KEY)
    except Exception as exc:
        _cache_failed("version", exc)
        return None
    return version


def _bump() -> None:
    if not _cache_available():
        return
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # no version yet: nothing cached can be current either
        cache.add(VERSION_KEY, time.time_ns(), timeout=None)
    except Exception as exc:
        _cache_failed("bump", exc)


def invalidate_products() -> None:
    """Make every cached product response stale, now and again once the current transaction commits.

    On commit the write is pinned first (shared.replica.pins): a reader that finds the new version reads
    the primary until the replica has replayed the write, so what it caches is never older than the key.
    """
    _bump()
    transaction.on_commit(lambda: record_write(PRODUCT_WRITES))
    transaction.on_commit(_bump)


def cached(key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """`compute()`'s result, from the cache when it holds one for the current version.

    Returns `(data, hit)`. Exceptions from `compute` propagate and nothing is cached.
    """
    version = catalog_version()
    if version is None:
        return compute(), False
    versioned_key = f"products:{version}:{hashlib.sha256(key.encode()).hexdigest()}"
    try:
        data = cache.get(versioned_key)
    except Exception as exc:
        _cache_failed("get", exc)
        return compute(), False
    if data is not None:
        return data, True
    data = compute()
    try:
        cache.set(versioned_key, data, timeout=settings.CATALOG_CACHE_SECONDS)
    except Exception as exc:
        _cache_failed("set", exc)
    return data, False

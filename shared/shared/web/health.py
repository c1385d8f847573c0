"""`/health/live` and `/health/ready`, the same for every service.

live: the process answers. ready: what it depends on, each checked with a short timeout:
- healthy: database, broker and cache all answer;
- degraded: the database answers but the broker or the cache does not. The service still serves:
  events wait in the outbox, caches fall back to the database. Answered with 200, so a load balancer
  keeps sending traffic, while the body tells operators what is wrong;
- unhealthy: the database does not answer; 503, take this instance out of rotation.

django-health-check was considered; its checks are all-or-nothing per plugin and have no notion of a
degraded-but-serving state, which is the distinction the gateway's aggregate `/health` needs.
"""

from __future__ import annotations

import logging
import time

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django_redis import get_redis_connection
from kombu import Connection

from shared.web import errors

logger = logging.getLogger(__name__)

CRITICAL = ("database",)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        logger.warning("readiness check failed", extra={"check": check.__name__, "error": str(exc)})
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 1)}


def database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def broker() -> None:
    with Connection(current_app.conf.broker_url, connect_timeout=1) as conn:
        conn.connect()


def cache() -> None:
    get_redis_connection("default").ping()


def readiness() -> dict:
    checks = {check.__name__: _timed(check) for check in (database, broker, cache)}
    down = {name for name, result in checks.items() if result["status"] != "up"}
    if down & set(CRITICAL):
        status = "unhealthy"
    elif down:
        status = "degraded"
    else:
        status = "healthy"
    return {"status": status, "service": settings.SERVICE_NAME, "checks": checks}


@errors.require_methods("GET")
def live(request):
    return JsonResponse({"status": "healthy", "service": settings.SERVICE_NAME})


@errors.require_methods("GET")
def ready(request):
    report = readiness()
    return JsonResponse(report, status=503 if report["status"] == "unhealthy" else 200)

"""The gateway's token verifier and health aggregator: a tiny WSGI app that nginx asks.

nginx's `auth_request` sends every protected request's headers here (GET /verify?mode=...) and forwards
the request only on a 2xx; the answer's X-User-Id and X-User-Roles headers become the headers the
services receive, so a client can never choose them. Modes:

- strict: a valid access token is required (Bearer header);
- read: anonymous GET/HEAD/OPTIONS pass (public catalog reads), anything else needs a valid token,
  and a token that is sent must be valid whatever the method;
- staff: a member of staff, by a Bearer access token or by the admin single sign-on cookie that
  identity's admin login sets (so a browser signed in to the admin opens Flower without a token).

Tokens are judged by the same code as in every service (shared.auth.tokens for validity,
shared.auth.revocation for withdrawn tokens): identity's public key, RS256 only, our issuer, unexpired,
the right kind, not revoked. The revocation list fails open for access tokens in strict and read modes
(as in the services: a Redis outage must not refuse every customer) and closed for staff: then the
answer is 403 with `X-Auth-Unavailable: 1`, which the gateway turns into a 503 with Retry-After.

GET /health aggregates every service's /health/ready (URLs from <SERVICE>_URL, names from
GATEWAY_SERVICES): healthy when all are, unhealthy when any answers unhealthy, and degraded when any is
degraded or does not answer at all, since the rest of the platform still serves.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from shared.auth.revocation import RevocationList, RevocationUnavailable
from shared.auth.tokens import ADMIN_SSO_COOKIE, TokenRefused, Verifier, roles_of

logger = logging.getLogger("gateway.verifier")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEALTH_TIMEOUT = float(os.environ.get("GATEWAY_HEALTH_TIMEOUT", "2"))
STATUS_TEXT = {200: "200 OK", 204: "204 No Content", 401: "401 Unauthorized", 403: "403 Forbidden",
               404: "404 Not Found", 503: "503 Service Unavailable"}  # fmt: skip


class Refused(Exception):
    """The request may not pass: `status` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, code: str, message: str, headers: list | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or []


# --- configuration -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def public_key() -> str:
    """identity's public key, read once: the process restarts when keys rotate."""
    inline = os.environ.get("JWT_PUBLIC_KEY")
    if inline:
        return inline
    with open(os.environ["JWT_PUBLIC_KEY_FILE"]) as handle:
        return handle.read()


@lru_cache(maxsize=1)
def verifier() -> Verifier:
    return Verifier(public_key=public_key(), issuer=os.environ.get("JWT_ISSUER", "order-platform-identity"))


@lru_cache(maxsize=1)
def revocation_list() -> RevocationList:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return RevocationList(url, timeout=float(os.environ.get("AUTH_REVOCATION_TIMEOUT", "0.25")))


# --- token verification --------------------------------------------------------------------------------


def bearer_token(environ: dict) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; a malformed header is refused."""
    header = environ.get("HTTP_AUTHORIZATION", "").strip()
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "authentication_failed", "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def sso_cookie(environ: dict) -> str | None:
    try:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(ADMIN_SSO_COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel else None


def access_claims(token: str, *, fail_open: bool) -> dict:
    """The claims of a valid, unrevoked access token, or Refused."""
    claims = verifier().access(token)
    revocation_list().check(claims, fail_open=fail_open)
    return claims


def staff_claims(environ: dict) -> dict:
    """A member of staff, by Bearer access token or by the admin sign-on cookie; fail closed."""
    token = bearer_token(environ)
    if token is not None:
        claims = access_claims(token, fail_open=False)
    elif cookie := sso_cookie(environ):
        claims = verifier().admin_sso(cookie)
        revocation_list().check(claims, fail_open=False)
    else:
        raise Refused(401, "not_authenticated", "Sign in to the admin, or send a staff access token.")
    if "staff" not in roles_of(claims):
        raise Refused(403, "permission_denied", "Only staff may do this.")
    return claims


def decide(mode: str, environ: dict) -> dict | None:
    """Claims of the caller, None for an allowed anonymous request, or Refused."""
    try:
        if mode == "staff":
            return staff_claims(environ)
        method = environ.get("HTTP_X_ORIGINAL_METHOD", "GET").upper()
        token = bearer_token(environ)
        if token is None:
            if mode == "read" and method in SAFE_METHODS:
                return None
            raise Refused(401, "not_authenticated", "Authentication credentials were not provided.")
        return access_claims(token, fail_open=True)
    except TokenRefused as exc:
        raise Refused(exc.status, exc.code, exc.message) from None
    except RevocationUnavailable:
        # auth_request only understands 2xx, 401 and 403: the gateway maps this 403 to a 503.
        raise Refused(
            403, "service_unavailable", "Sign-in cannot be checked right now.", [("X-Auth-Unavailable", "1")]
        ) from None


# --- health aggregate ----------------------------------------------------------------------------------


def service_urls() -> dict[str, str]:
    names = [name for name in os.environ.get("GATEWAY_SERVICES", "").split(",") if name]
    return {name: os.environ.get(f"{name.upper()}_URL", "") for name in names}


def service_readiness(url: str) -> dict:
    """One service's readiness answer, or {"status": "unreachable"} when it does not answer in time."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    try:
        with opener.open(f"{url}/health/ready", timeout=HEALTH_TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code in (502, 504):  # the service's internal balancer found no instance answering
            return {"status": "unreachable", "error": f"no instance answered (HTTP {error.code})"}
        body = error.read()  # 503 (unhealthy) still carries the report
    except (urllib.error.URLError, OSError) as error:
        return {"status": "unreachable", "error": str(getattr(error, "reason", error))[:200]}
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    try:
        report = json.loads(body)
        return {
            "status": str(report.get("status", "unknown")),
            "checks": report.get("checks", {}),
            "ms": elapsed,
        }
    except (ValueError, AttributeError):
        return {"status": "invalid", "error": body[:200].decode(errors="replace")}


def overall_status(statuses: list[str]) -> str:
    """unhealthy if any service says so; degraded if any is degraded or unreachable; else healthy."""
    if "unhealthy" in statuses:
        return "unhealthy"
    if any(status != "healthy" for status in statuses):
        return "degraded"
    return "healthy"


def health_report() -> dict:
    urls = service_urls()
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        answers = dict(zip(urls, pool.map(service_readiness, urls.values()), strict=True))
    return {"status": overall_status([a["status"] for a in answers.values()]), "services": answers}


# --- WSGI ----------------------------------------------------------------------------------------------


def respond(start_response, status: int, body: dict | None = None, headers: list | None = None) -> list:
    payload = json.dumps(body).encode() if body is not None else b""
    all_headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *(headers or [])]
    all_headers.append(("Content-Length", str(len(payload))))
    start_response(STATUS_TEXT[status], all_headers)
    return [payload]


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "fields": {}}}


def verify_view(environ: dict, start_response) -> list:
    mode = parse_qs(environ.get("QUERY_STRING", "")).get("mode", ["strict"])[0]
    try:
        claims = decide(mode, environ)
    except Refused as refused:
        body = error(refused.code, refused.message)
        return respond(start_response, refused.status, body, headers=refused.headers)
    if claims is None:
        return respond(start_response, 204, headers=[("X-User-Id", ""), ("X-User-Roles", "")])
    headers = [("X-User-Id", str(claims["user_id"])), ("X-User-Roles", ",".join(roles_of(claims)))]
    return respond(start_response, 204, headers=headers)


def health_view(environ: dict, start_response) -> list:
    report = health_report()
    return respond(start_response, 503 if report["status"] == "unhealthy" else 200, report)


def application(environ: dict, start_response) -> list:
    """Routes: /verify (for auth_request), /health (the gateway's aggregate) and /live (the process
    answers: the liveness probe of a container, which must not fail because a service is down)."""
    path = environ.get("PATH_INFO", "")
    if path == "/live":
        return respond(start_response, 200, {"status": "ok"})
    if path == "/verify":
        return verify_view(environ, start_response)
    if path == "/health":
        return health_view(environ, start_response)
    return respond(start_response, 404, error("not_found", "Not found."))

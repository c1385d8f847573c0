"""shared.auth: which tokens are valid where, the revocation list, and its policy when Redis does not
answer (refused connection, and a Redis that accepts connections but never replies). Real Redis."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import jwt
import pytest
from django.conf import settings

from shared.auth.revocation import RevocationList, RevocationUnavailable
from shared.auth.tokens import TokenRefused, Verifier
from shared.testing import generate_key_pair

PRIVATE, PUBLIC = (key.decode() for key in generate_key_pair())
OTHER_PRIVATE, _ = (key.decode() for key in generate_key_pair())
ISSUER = "order-platform-identity"
VERIFIER = Verifier(public_key=PUBLIC, issuer=ISSUER)


def _token(key: str = PRIVATE, algorithm: str = "RS256", **claims) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, "user_id": str(uuid.uuid4())}
    return jwt.encode(base | claims, key, algorithm=algorithm)


ACCESS = {"token_type": "access", "ver": 1, "sid": "s1"}
ADMIN = {"aud": "admin", "token_use": "admin_sso", "is_staff": True, "sid": "s1"}
SERVICE = {"aud": "platform-services", "token_type": "service", "client_id": "orders", "scope": "saga:read"}


def test_each_kind_of_token_is_accepted_only_where_it_belongs():
    access, admin, service = _token(**ACCESS), _token(**ADMIN), _token(**SERVICE)

    assert VERIFIER.access(access)["token_type"] == "access"
    assert VERIFIER.admin_sso(admin)["sid"] == "s1"
    assert VERIFIER.service(service).scopes == {"saga:read"}
    for verify, wrong in [
        (VERIFIER.access, admin), (VERIFIER.access, service),
        (VERIFIER.admin_sso, access), (VERIFIER.admin_sso, service),
        (VERIFIER.service, access), (VERIFIER.service, admin),
    ]:  # fmt: skip
        with pytest.raises(TokenRefused):
            verify(wrong)


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda: _token(OTHER_PRIVATE, **ACCESS), id="other key"),
        pytest.param(lambda: _token(None, "none", **ACCESS), id="alg none"),
        pytest.param(lambda: _token(PUBLIC.encode()[:64], "HS256", **ACCESS), id="HS256 with the public key"),
        pytest.param(lambda: _token(**ACCESS, iss="elsewhere"), id="other issuer"),
        pytest.param(lambda: _token(**ACCESS, exp=int(time.time()) - 1), id="expired"),
        pytest.param(lambda: _token(**(ACCESS | {"token_type": "refresh"})), id="refresh as access"),
        pytest.param(lambda: _token(**ACCESS, aud="admin"), id="with an audience"),
    ],
)
def test_forged_and_misused_access_tokens_are_refused(forged):
    with pytest.raises(TokenRefused) as refused:
        VERIFIER.access(forged())
    assert refused.value.status == 401


def test_an_admin_token_of_someone_not_staff_is_forbidden():
    with pytest.raises(TokenRefused) as refused:
        VERIFIER.admin_sso(_token(**(ADMIN | {"is_staff": False})))
    assert (refused.value.status, refused.value.code) == (403, "permission_denied")


def test_a_service_token_without_the_scope_is_forbidden():
    caller = VERIFIER.service(_token(**SERVICE))
    with pytest.raises(TokenRefused) as refused:
        caller.require("orders:write")
    assert (refused.value.status, refused.value.code) == (403, "insufficient_scope")


@pytest.fixture
def revocations():
    store = RevocationList(settings.REDIS_URL)
    written: list[str] = []
    yield store, written
    if written:
        store.redis.delete(*written)


def test_a_token_older_than_the_users_version_or_of_an_ended_sign_in_is_refused(revocations):
    store, written = revocations
    user, sign_in = str(uuid.uuid4()), str(uuid.uuid4())
    claims = {"user_id": user, "ver": 2, "sid": sign_in}
    assert store.refusal(claims) is None  # nothing recorded: valid

    store.publish_user_version(user_id=user, version=2, ttl_seconds=30)
    written.append(f"auth:user-version:{user}")
    assert store.refusal(claims) is None
    assert "changed" in store.refusal(claims | {"ver": 1})
    assert store.refusal(claims | {"ver": 3}) is None

    store.publish_sign_ins_ended([sign_in], ttl_seconds=30)
    written.append(f"auth:sign-in-ended:{sign_in}")
    assert "ended" in store.refusal(claims)
    assert store.refusal(claims | {"sid": str(uuid.uuid4())}) is None
    with pytest.raises(TokenRefused):
        store.check(claims, fail_open=True)


@pytest.fixture
def hung_redis():
    """A server that accepts connections and never answers: how a paused or wedged Redis looks."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()
    for connection in accepted:
        connection.close()


def test_a_hung_redis_costs_one_timeout_then_nothing_and_the_policy_decides(hung_redis):
    store = RevocationList(hung_redis, timeout=0.2, retry_after=30)
    claims = {"user_id": str(uuid.uuid4()), "ver": 1, "sid": "s"}

    started = time.monotonic()
    store.check(claims, fail_open=True)  # accepted unchecked (API access tokens)
    first = time.monotonic() - started
    started = time.monotonic()
    for _ in range(50):
        store.check(claims, fail_open=True)
    later = time.monotonic() - started
    with pytest.raises(RevocationUnavailable):
        store.check(claims, fail_open=False)  # refused (staff)

    assert 0.15 < first < 1.0
    assert later < 0.1  # the breaker is open: Redis is not asked again for retry_after seconds

"""identity: users, roles, sign-ins, JWT issuing (RS256), the JWKS and the service clients' grant."""

import environ
from identity.clients import service_clients_from_env

from shared.settings import configure

configure(
    globals(),
    service="identity",
    apps=["identity"],
    signs_tokens=True,
    api_authentication="identity.authentication.IdentityAccessAuthentication",
    admin_app="identity.apps.IdentityAdminConfig",
    beat_schedule={
        # Revocations reach Redis right after commit; this re-publishes recent ones in case Redis was away.
        "revocations-publish": {"task": "identity.revocations_publish", "schedule": 10.0},
    },
)

AUTH_USER_MODEL = "identity.User"
# identity's own admin session lasts no longer than an admin sign-in.
SESSION_COOKIE_AGE = int(JWT["ADMIN_SIGN_IN_LIFETIME"].total_seconds())  # noqa: F821 (set by configure)
SERVICE_CLIENTS = service_clients_from_env(environ.Env(), debug=DEBUG)  # noqa: F821 (set by configure)

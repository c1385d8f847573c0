"""identity: users, roles, sign-ins, JWT issuing (RS256), the JWKS and the service clients' grant."""

from pathlib import Path

import environ
from identity.clients import service_clients_from_env

from shared.settings import service_settings

env = environ.Env()

base = service_settings(
    base_dir=Path(__file__).resolve().parent.parent,
    service="identity",
    apps=["identity"],
    signs_tokens=True,
    api_authentication="identity.authentication.IdentityAccessAuthentication",
    admin_app="identity.apps.IdentityAdminConfig",
    beat_schedule={
        # Revocations reach Redis right after commit; this re-publishes recent ones in case Redis was away.
        "revocations-publish": {"task": "identity.revocations_publish", "schedule": 10.0},
    },
    extra={"AUTH_USER_MODEL": "identity.User"},
)
globals().update(
    base,
    # identity's own admin session lasts no longer than an admin sign-in.
    SESSION_COOKIE_AGE=int(base["JWT"]["ADMIN_SIGN_IN_LIFETIME"].total_seconds()),
    SERVICE_CLIENTS=service_clients_from_env(env, debug=base["DEBUG"]),
)

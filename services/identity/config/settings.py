"""identity: users, roles, JWT issuing (RS256) and the JWKS. Everything else comes from shared."""

from shared.settings import configure

configure(
    globals(),
    service="identity",
    apps=["identity"],
    extra_apps=["rest_framework_simplejwt.token_blacklist"],
    signs_tokens=True,
)

AUTH_USER_MODEL = "identity.User"

"""The platform's services that may ask identity for service tokens, read from the environment.

No database table: which service may read what is deployment configuration, declared per service in
topology.toml (`client_scopes`) and rendered into identity's environment by every deployment (local,
compose, Kubernetes), with each client's secret beside it. Imports nothing from the app (settings use it).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


def service_clients_from_env(env, *, debug: bool) -> dict[str, dict]:
    """{client_id: {"scopes": [...], "secret": "..."}} from SERVICE_CLIENTS and SERVICE_CLIENT_SECRET_<ID>.

    SERVICE_CLIENTS lists each client with its scopes: "orders=saga:read" (clients separated by ";",
    scopes by ","). A client without a secret can never be granted a token; with DEBUG off identity
    refuses to start with one missing, as for any other secret.
    """
    clients = {}
    for entry in filter(None, (item.strip() for item in env.str("SERVICE_CLIENTS", default="").split(";"))):
        client_id, _, scopes = (part.strip() for part in entry.partition("="))
        variable = f"SERVICE_CLIENT_SECRET_{client_id.upper()}"
        secret = env.str(variable, default="")
        if not secret and not debug:
            raise ImproperlyConfigured(f"{variable} is not set (the secret of service client {client_id!r})")
        clients[client_id] = {
            "scopes": [scope.strip() for scope in scopes.split(",") if scope.strip()],
            "secret": secret,
        }
    return clients

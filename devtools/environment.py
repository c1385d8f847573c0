"""The environment each process of a local instance gets: its database, the broker and Redis, its own
secrets only, and where its peers are. One function per kind of value, so that a test can ask what a
process receives (docs/development.md, "Configuration": the same variables compose and Kubernetes set).
"""

from __future__ import annotations

import json
import os
import secrets
from urllib.parse import quote, urlsplit

from devtools.instance import Platform, url_host
from devtools.paths import KEYS_DIR, VENV_BIN, VENV_DIR

SHARED_TESTS_ROLE = "shared_tests"  # role and database used only by the shared package's test suite
SECRETS_FILE = "secrets.json"  # the instance's generated secrets (instance_secrets)
FLOWER_USER = "flower"  # Flower's basic-auth user; the password is the instance's
RABBITMQ_MANAGEMENT_PORT = int(os.environ.get("RABBITMQ_MANAGEMENT_PORT", "15672"))
DEMO_LOGIN_DEFAULTS = {
    "DEMO_STAFF_EMAIL": "staff@example.com",
    "DEMO_STAFF_PASSWORD": "staff-demo-pass-1",
    "DEMO_CUSTOMER_EMAIL": "customer@example.com",
    "DEMO_CUSTOMER_PASSWORD": "customer-demo-pass-1",
}


def caller_env() -> dict[str, str]:
    """The caller's environment, with the virtualenv first on PATH for whatever the children spawn."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(filter(None, [str(VENV_BIN), env.get("PATH")]))
    env["VIRTUAL_ENV"] = str(VENV_DIR)
    return env


def service_env(platform: Platform, role: str, port: int | None = None, *, inherit: bool = True) -> dict:
    """The environment of a service's processes (and of its tests, migrations and manage.py calls).

    `role` names the database role and database (a service, or the shared package's test role).
    supervisord programs get inherit=False: they inherit supervisord's environment, which is the
    caller's, so their configuration only needs what is specific to the platform.
    """
    instance = platform.instance
    own = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(platform, role),
        "BROKER_URL": instance.broker_url,
        "REDIS_URL": instance.redis_url,
        "PLATFORM_INSTANCE": instance.name,
        "JWT_PUBLIC_KEY_FILE": str(KEYS_DIR / "jwt-public.pem"),
        "PYTHONUNBUFFERED": "1",
    }
    if port is not None:
        own["SERVICE_PORT"] = str(port)
    own |= secrets_env(platform, role)
    own |= peer_urls(platform)
    own["PLATFORM_SERVICES"] = ",".join(platform.topology.service_names)
    own["EMAIL_FILE_PATH"] = str(instance.var_dir / "mail")
    return {**caller_env(), **own} if inherit else own


def db_password(role: str) -> str:
    """A role's database password: <NAME>_DB_PASSWORD, else the well-known local default."""
    return os.environ.get(f"{role.upper()}_DB_PASSWORD", f"{role}-local")


def database_url(platform: Platform, role: str) -> str:
    endpoints = platform.endpoints
    location = f"{url_host(endpoints.postgres_host)}:{endpoints.postgres_port}"
    return _role_url(platform, role, location)


def replica_env(platform: Platform, role: str) -> dict[str, str]:
    """DATABASE_REPLICA_URL when the instance runs a read replica: the same database and role on the
    standby's port. Only the supervised processes get it: manage.py commands and test suites read and
    write the primary alone (a test's transaction is invisible on another connection)."""
    if platform.replica is None:
        return {}
    return {"DATABASE_REPLICA_URL": _role_url(platform, role, f"127.0.0.1:{platform.replica.port}")}


def _role_url(platform: Platform, role: str, location: str) -> str:
    credentials = f"{quote(role, safe='')}:{quote(db_password(role), safe='')}"
    return f"postgres://{credentials}@{location}/{quote(platform.instance.database(role), safe='')}"


def secrets_env(platform: Platform, role: str) -> dict[str, str]:
    """The secrets of one service's processes, and only its own: its SECRET_KEY; identity's private key
    (the one signer); a client's secret to ask identity for service tokens; identity gets every client's
    secret and scopes (SERVICE_CLIENTS). Values come from the instance's secrets file."""
    stored = instance_secrets(platform)
    env = {"SECRET_KEY": stored[f"{role}.secret_key"]}
    if role not in platform.topology.service_names:
        return env
    service = platform.topology.service(role)
    if service.signs_tokens:
        env["JWT_PRIVATE_KEY_FILE"] = str(KEYS_DIR / "jwt-private.pem")
        clients = platform.topology.clients
        env["SERVICE_CLIENTS"] = ";".join(f"{c.name}={','.join(c.client_scopes)}" for c in clients)
        env |= {f"SERVICE_CLIENT_SECRET_{c.env_name}": stored[f"{c.name}.client_secret"] for c in clients}
    if service.client_scopes:
        env["SERVICE_CLIENT_SECRET"] = stored[f"{role}.client_secret"]
    return env


def instance_secrets(platform: Platform) -> dict[str, str]:
    """Random secrets of the instance, made on first use and kept in var/<instance>/secrets.json (0600):
    a SECRET_KEY per service (and the shared package's tests), a client secret per service client, and
    the password the gateway uses to reach Flower. Nothing well-known: the services refuse to start
    without real secrets when DEBUG is off (docs/security.md)."""
    path = platform.instance.var_dir / SECRETS_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    wanted = [f"{role}.secret_key" for role in [*platform.topology.service_names, SHARED_TESTS_ROLE]]
    wanted += [f"{client.name}.client_secret" for client in platform.topology.clients]
    wanted.append("flower.password")
    missing = [name for name in wanted if name not in stored]
    if missing:
        stored |= {name: secrets.token_urlsafe(32) for name in missing}
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(stored, indent=2, sort_keys=True))
        temporary.chmod(0o600)
        temporary.replace(path)
    return stored


def peer_urls(platform: Platform) -> dict[str, str]:
    """<NAME>_URL of every service and sandbox of the instance: how services find each other.

    A service's URL is its internal balancer on the gateway nginx, which spreads calls over every web
    instance and retries idempotent ones on another (as a Kubernetes Service or compose's DNS does), so
    the URL stays the same whatever the instance count. Without a gateway it is instance 1 itself.
    """
    topology = platform.topology
    ports = {
        service.env_name: topology.balancer_port(service) or service.port for service in topology.services
    }
    ports |= {sandbox.env_name: sandbox.port for sandbox in topology.sandboxes}
    urls = {f"{name}_URL": f"http://127.0.0.1:{platform.instance.port(port)}" for name, port in ports.items()}
    # A sandbox stands in for a system outside the platform, so its URL may be given instead: the outside
    # system's own test endpoint, or a proxy in front of the sandbox (the chaos suite's link faults).
    given = {f"{sandbox.env_name}_URL" for sandbox in topology.sandboxes} & set(os.environ)
    return urls | {name: os.environ[name] for name in given}


def demo_logins() -> dict[str, str]:
    """The demo accounts that `seed` creates: the caller's choice, else the documented defaults."""
    return {key: os.environ.get(key, default) for key, default in DEMO_LOGIN_DEFAULTS.items()}


def flower_env(platform: Platform) -> dict[str, str]:
    """FLOWER_BASIC_AUTH, for Flower and for the gateway that sends it on behalf of staff."""
    return {"FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{instance_secrets(platform)['flower.password']}"}


def broker_management_api(broker_url: str) -> str:
    """The RabbitMQ management API's URL, with the broker's credentials (Flower's --broker_api)."""
    parts = urlsplit(broker_url)
    credentials = parts.netloc.rpartition("@")[0] or "guest:guest"
    host = url_host(parts.hostname or "127.0.0.1")
    return f"http://{credentials}@{host}:{RABBITMQ_MANAGEMENT_PORT}/api/"

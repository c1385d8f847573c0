"""What an instance needs on the shared infrastructure, made once and safe to repeat: the local JWT key
pair, one Postgres role and private database per service, the RabbitMQ vhost and plugins; and running a
service's manage.py commands (migrations, broker topology, demo data)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

from devtools.bootstrap import tcp_reachable
from devtools.console import PlatformError, display, step, wait_for
from devtools.environment import SHARED_TESTS_ROLE, db_password, demo_logins, service_env
from devtools.instance import DEFAULT_INSTANCE, Platform, host_and_port, redact_url
from devtools.paths import KEYS_DIR, VENV_PYTHON
from devtools.topology import Service

MIGRATE_COMMANDS = (("migrate", "--noinput"), ("setup_messaging",))
SEED_COMMANDS = (("seed",),)
RABBITMQ_PROMETHEUS_PLUGIN = "rabbitmq_prometheus"
# The plugin's port on the broker's host; RABBITMQ_METRICS_PORT overrides it (a broker configured otherwise).
RABBITMQ_PROMETHEUS_PORT = int(os.environ.get("RABBITMQ_METRICS_PORT", "15692"))
RABBITMQ_MANAGEMENT_PLUGIN = "rabbitmq_management"
RABBITMQ_MANAGEMENT_PORT = int(os.environ.get("RABBITMQ_MANAGEMENT_PORT", "15672"))


def provision(platform: Platform) -> None:
    """Create what the instance needs on the shared infrastructure; safe to repeat."""
    from devtools import keys  # needs cryptography: importable only inside the virtualenv

    # The local JWT key pair, made here so that no process but identity's needs the private key's path.
    KEYS_DIR.mkdir(parents=True, exist_ok=True)
    KEYS_DIR.chmod(0o700)
    keys.ensure_local_key_pair(KEYS_DIR / "jwt-private.pem", KEYS_DIR / "jwt-public.pem")
    roles = [*platform.topology.service_names, SHARED_TESTS_ROLE]
    step(f"Provisioning Postgres roles and databases for {', '.join(roles)}")
    provision_databases(platform, roles)
    if platform.instance.name != DEFAULT_INSTANCE:
        ensure_broker_vhost(platform)


def provision_databases(platform: Platform, roles: list[str]) -> None:
    """One login role and one private database per role, connected as the Postgres admin."""
    import psycopg  # importable only inside the virtualenv

    admin_url = platform.endpoints.pg_admin_url
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
            for role in roles:
                ensure_role(connection, role)
                ensure_private_database(connection, platform.instance.database(role), owner=role)
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlatformError(f"provisioning Postgres as {redact_url(admin_url)} failed: {message}") from None


def ensure_role(connection, role: str) -> None:
    """Create the role if missing; (re)set its password so that <NAME>_DB_PASSWORD always applies."""
    from psycopg import sql

    exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    # CREATEDB: Django's test runner creates and drops test_<db> as the service's own role.
    statement = sql.SQL("{} ROLE {} WITH LOGIN CREATEDB PASSWORD {}").format(
        sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(db_password(role))
    )
    connection.execute(statement)
    if not exists:
        print(f"    created role {role}")


def ensure_private_database(connection, database: str, owner: str) -> None:
    """Create the database owned by `owner`, and let no other (non-superuser) role connect to it."""
    from psycopg import sql

    names = {"db": sql.Identifier(database), "owner": sql.Identifier(owner)}
    exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    if exists:
        connection.execute(sql.SQL("ALTER DATABASE {db} OWNER TO {owner}").format(**names))
    else:
        connection.execute(sql.SQL("CREATE DATABASE {db} OWNER {owner}").format(**names))
        print(f"    created database {database}")
    # Every database is open to PUBLIC by default; services must only reach their own data.
    connection.execute(sql.SQL("REVOKE CONNECT ON DATABASE {db} FROM PUBLIC").format(**names))
    connection.execute(sql.SQL("GRANT CONNECT ON DATABASE {db} TO {owner}").format(**names))


# --- RabbitMQ --------------------------------------------------------------------------------------------


def ensure_broker_vhost(platform: Platform) -> None:
    """Create the instance's RabbitMQ vhost and give the broker user every permission on it."""
    vhost = platform.instance.broker_vhost
    user = urlsplit(platform.endpoints.broker_url).username or "guest"
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise PlatformError(
            f"instance {platform.instance.name} needs the RabbitMQ vhost {vhost!r}, but rabbitmqctl is not "
            f"available here: create it on the broker (rabbitmqctl add_vhost {vhost}; "
            f"rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*') and run again"
        )
    existing = run_rabbitmqctl(rabbitmqctl, "-q", "list_vhosts", "--no-table-headers", "name").split()
    if vhost not in existing:
        run_rabbitmqctl(rabbitmqctl, "add_vhost", vhost)
        print(f"    created RabbitMQ vhost {vhost}")
    run_rabbitmqctl(rabbitmqctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def run_rabbitmqctl(rabbitmqctl: str, *arguments: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [rabbitmqctl, *arguments], input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise PlatformError(
            f"rabbitmqctl {' '.join(arguments)} failed (exit {result.returncode}): {lines[-1]}"
        )
    return result.stdout


def ensure_rabbitmq_plugins(platform: Platform) -> None:
    """RabbitMQ's own Prometheus plugin (queue depths, dead letters, unroutable events) and its management
    API (Flower's queue page), each enabled with rabbitmq-plugins when its port does not answer (no
    broker restart needed). Without them the platform still runs, so a failure is explained, not fatal."""
    ensure_rabbitmq_plugin(platform, RABBITMQ_PROMETHEUS_PLUGIN, RABBITMQ_PROMETHEUS_PORT, "queue metrics")
    ensure_rabbitmq_plugin(
        platform, RABBITMQ_MANAGEMENT_PLUGIN, RABBITMQ_MANAGEMENT_PORT, "Flower's queue page"
    )


def ensure_rabbitmq_plugin(platform: Platform, plugin: str, port: int, purpose: str) -> None:
    host = host_and_port(platform.endpoints.broker_url, 5672)[0]
    if tcp_reachable(host, port):
        return
    command = shutil.which("rabbitmq-plugins")
    hint = (
        f"{purpose} unavailable: RabbitMQ's {plugin} plugin does not answer on {host}:{port}; "
        f"enable it on the broker (rabbitmq-plugins enable {plugin})"
    )
    if command is None:
        print(f"WARNING: {hint}; rabbitmq-plugins is not available here", file=sys.stderr)
        return
    step(f"Enabling RabbitMQ's {plugin} plugin")
    result = subprocess.run([command, "enable", plugin], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        print(f"WARNING: {hint}; rabbitmq-plugins failed (exit {result.returncode}): {last}", file=sys.stderr)
    elif not wait_for(lambda: tcp_reachable(host, port), 30):
        print(f"WARNING: {hint}; it was enabled but its port did not open within 30 s", file=sys.stderr)


# --- manage.py --------------------------------------------------------------------------------------------


def has_management_command(service: Service, command: str) -> bool:
    return (service.directory / service.name / "management" / "commands" / f"{command}.py").exists()


def run_manage(platform: Platform, service: Service, arguments, extra_env: dict | None = None) -> int:
    """`python manage.py <arguments>` in the service's directory and environment; returns its exit status."""
    if not (service.directory / "manage.py").exists():
        print(f"{service.name}: {display(service.directory / 'manage.py')} does not exist", file=sys.stderr)
        return 1
    env = service_env(platform, service.name, platform.instance.port(service.port))
    env.update(extra_env or {})
    result = subprocess.run(
        [str(VENV_PYTHON), "manage.py", *arguments], cwd=service.directory, env=env, check=False
    )
    return exit_status(result.returncode)


def run_management_commands(platform: Platform, commands: tuple[tuple[str, ...], ...]) -> None:
    """Run each command in every service, stopping at the first failure; `seed` only where it exists."""
    for service in platform.topology.services:
        for command in commands:
            if command[0] == "seed" and not has_management_command(service, "seed"):
                continue
            step(f"{service.name}: manage.py {' '.join(command)}")
            # The commands say what they did; the services' per-row INFO log lines would drown it.
            quiet = {"LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
            status = run_manage(platform, service, command, extra_env=demo_logins() | quiet)
            if status != 0:
                raise PlatformError(
                    f"{service.name}: manage.py {' '.join(command)} failed with exit status {status}"
                )


def exit_status(returncode: int) -> int:
    """subprocess reports death by signal N as -N; a shell would say 128+N."""
    return 128 - returncode if returncode < 0 else returncode

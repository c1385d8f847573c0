"""`manage_all.py restore BACKUP_DIR`: a backup (devtools.backup) into the current instance, which may be
another one than the instance backed up (a fresh one, on another machine's Postgres and broker).

In order, stopping at the first problem: every file checked against the manifest's checksums; the
instance stopped; its databases and queues empty, unless --force; then the databases dropped,
provisioned again (roles, empty databases, the vhost) and restored by pg_restore as the service's own
role (--no-owner --role), so a dump of instance A's `orders_a` loads into instance B's `orders_b`; the
events caught between two services marked for the outbox relay again (devtools.undelivered); the
platform's queues of the vhost deleted and the broker definitions imported into it. `up` then migrates
(a backup of older code gets the newer migrations), starts everything, and the relay publishes.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from devtools import backup, broker_definitions, provision, undelivered
from devtools.console import PlatformError, display, step
from devtools.instance import Platform
from devtools.paths import ROOT
from devtools.supervisor import Supervisor

# What `migrate` writes into an empty database: a migrated but unused database holds no data.
BOOKKEEPING_TABLES = ("django_migrations", "django_content_type", "auth_permission")
DEFAULT_REPLAY_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class TargetState:
    """What the instance restored into holds before anything is touched."""

    existing: list[str]  # its databases that exist
    tables_with_rows: dict[str, list[str]]  # database -> its tables holding rows (bookkeeping aside)
    queue_depths: dict[str, int]  # the platform's queues in its vhost -> messages

    @property
    def holds_data(self) -> list[str]:
        found = [
            f"{database} ({len(tables)} tables with rows)"
            for database, tables in self.tables_with_rows.items()
            if tables
        ]
        queued = sum(self.queue_depths.values())
        return found + ([f"{queued} messages in the vhost's queues"] if queued else [])


@dataclass
class Report:
    """What restore did, printed as JSON."""

    instance: str
    backup: str
    backed_up_instance: str
    backup_created_at: str
    databases: dict[str, str] = field(default_factory=dict)  # service -> database restored
    replaced: list[str] = field(default_factory=list)  # what held data and was overwritten (--force)
    deleted_queues: dict[str, int] = field(default_factory=dict)  # queue -> messages it held
    broker: dict[str, int] = field(default_factory=dict)  # kind of definition -> how many imported
    events_to_republish: dict[str, int] = field(default_factory=dict)  # producer -> reopened outbox rows
    warnings: list[str] = field(default_factory=list)
    next_step: str = ""


def restore(
    platform: Platform,
    folder: Path,
    *,
    force: bool,
    jobs: int = 2,
    replay_window: timedelta = DEFAULT_REPLAY_WINDOW,
) -> Report:
    """Restore the backup in `folder` into the instance; what it did, or a PlatformError before any change."""
    manifest = backup.verified_manifest(folder)  # before anything else: a bad backup touches nothing
    pg_restore = restore_tool(manifest)
    rabbitmqctl = broker_definitions.rabbitmqctl_path()
    definitions = json.loads((folder / manifest.broker.file.name).read_text())
    report = Report(platform.instance.name, str(folder), manifest.instance, manifest.created_at)
    report.warnings += compatibility_warnings(platform, manifest)
    refuse_if_running(platform)
    state = inspect_target(platform, rabbitmqctl)
    if state.holds_data and not force:
        raise PlatformError(
            f"instance {platform.instance.name!r} holds data: {', '.join(state.holds_data)}; nothing was "
            "restored. Restore into a fresh instance (another PLATFORM_INSTANCE), or replace it with --force"
        )
    report.replaced = state.holds_data
    recreate_databases(platform, state.existing)
    for database in manifest.databases:
        if database.service in platform.topology.service_names:
            restore_database(platform, pg_restore, folder, database, jobs)
            report.databases[database.service] = platform.instance.database(database.service)
    report.events_to_republish = reopen_undelivered(platform, manifest, definitions, replay_window)
    report.deleted_queues = state.queue_depths
    report.broker = restore_broker(platform, rabbitmqctl, definitions, state.queue_depths)
    report.next_step = f"PLATFORM_INSTANCE={platform.instance.name} python3 manage_all.py up"
    return report


def restore_tool(manifest: backup.Manifest) -> str:
    pg_restore = backup.require_tool("pg_restore")
    version = backup.tool_version(pg_restore)
    if backup.major_version(version) < backup.major_version(manifest.pg_dump_version):
        raise PlatformError(
            f"{version} cannot read dumps of {manifest.pg_dump_version}: install the client tools of that "
            "version or later"
        )
    return pg_restore


def compatibility_warnings(platform: Platform, manifest: backup.Manifest) -> list[str]:
    """What may not fit: services the backup lacks or has beyond the topology, code older than the backup."""
    backed_up = {database.service for database in manifest.databases}
    warnings = [
        f"the backup has no database of {service}: `up` creates it empty"
        for service in platform.topology.service_names
        if service not in backed_up
    ]
    warnings += [
        f"{service} is in the backup but not in topology.toml: not restored"
        for service in sorted(backed_up - set(platform.topology.service_names))
    ]
    if manifest.git_commit and not commit_is_in_checkout(manifest.git_commit):
        warnings.append(
            f"the backup was taken by commit {manifest.git_commit[:12]}, which this checkout does not "
            "contain: its schema may be newer than this code's migrations"
        )
    return warnings


def commit_is_in_checkout(commit: str) -> bool:
    found = subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT, capture_output=True, check=False
    )
    return found.returncode == 0


def refuse_if_running(platform: Platform) -> None:
    if Supervisor(platform.instance).pid() is not None:
        name = platform.instance.name
        raise PlatformError(
            f"instance {name!r} is running: stop it first (PLATFORM_INSTANCE={name} python3 manage_all.py "
            "down); its processes would write into the databases while they are restored"
        )


def inspect_target(platform: Platform, rabbitmqctl: str) -> TargetState:
    services = platform.topology.service_names
    names = [platform.instance.database(service) for service in services]
    existing = sorted(backup.existing_databases(platform, names))
    return TargetState(
        existing=existing,
        tables_with_rows={database: tables_with_rows(platform, database) for database in existing},
        queue_depths=broker_definitions.platform_queue_depths(
            rabbitmqctl, platform.instance.broker_vhost, services
        ),
    )


def tables_with_rows(platform: Platform, database: str) -> list[str]:
    """The database's tables that hold at least one row, Django's bookkeeping aside."""
    from psycopg import sql

    with backup.admin_connect(platform, database, autocommit=True) as db:
        tables = db.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%%' AND c.relname <> ALL(%s) ORDER BY 1, 2",
            [list(BOOKKEEPING_TABLES)],
        ).fetchall()
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})")
        return [
            f"{schema}.{table}"
            for schema, table in tables
            if db.execute(query.format(sql.Identifier(schema, table))).fetchone()[0]
        ]


def recreate_databases(platform: Platform, existing: list[str]) -> None:
    """Drop the instance's databases, then provision them again empty (with roles and vhost)."""
    from psycopg import sql

    if existing:
        step(f"Dropping {', '.join(existing)}")
        with backup.admin_connect(platform, "postgres", autocommit=True) as db:
            for database in existing:
                # FORCE: a stray session (a developer's psql) must not keep the database alive.
                db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
    provision.provision(platform)


def restore_database(
    platform: Platform, pg_restore: str, folder: Path, database: backup.DatabaseBackup, jobs: int
) -> None:
    target = platform.instance.database(database.service)
    step(f"Restoring {database.database} into {target} (pg_restore --jobs {jobs})")
    dump = folder / database.file.name
    command = [
        pg_restore, "--no-owner", f"--role={database.service}", "--exit-on-error", "--no-password",
        f"--jobs={jobs}", f"--dbname={backup.database_url(platform, target)}", str(dump),
    ]  # fmt: skip
    backup.run_postgres_tool(command, f"pg_restore of {display(dump)}")


def reopen_undelivered(
    platform: Platform, manifest: backup.Manifest, definitions: dict, window: timedelta
) -> dict[str, int]:
    if window <= timedelta(0):
        return {}
    restored = set(platform.topology.service_names)
    services = [database.service for database in manifest.databases if database.service in restored]
    step("Handing events a consumer had not recorded back to the outbox relay")
    subscriptions = broker_definitions.subscriptions(definitions, services)
    since = manifest.earliest_snapshot - window
    reopened = undelivered.events_to_republish(platform, subscriptions, since)
    return {
        service: undelivered.mark_unpublished(platform, service, ids)
        for service, ids in reopened.items()
        if ids
    }


def restore_broker(
    platform: Platform, rabbitmqctl: str, definitions: dict, stale_queues: dict[str, int]
) -> dict[str, int]:
    """The platform's queues in the vhost deleted (their messages belong to the replaced state), then the
    backup's definitions imported into the instance's vhost, whatever the vhost was called there."""
    vhost = platform.instance.broker_vhost
    if stale_queues:
        step(f"Deleting the platform's {len(stale_queues)} queues in vhost {vhost!r}")
        broker_definitions.delete_queues(platform.instance.broker_url, stale_queues)
    step(f"Importing the broker definitions of vhost {definitions['vhost']!r} into {vhost!r}")
    broker_definitions.import_into(rabbitmqctl, definitions, vhost)
    return {kind: len(definitions.get(kind, [])) for kind in broker_definitions.VHOST_SCOPED}

"""`manage_all.py backup`: every service's database and the broker's definitions of one instance, and
a manifest (JSON) that `restore` checks before it touches anything (docs/data.md, "Backups (local)").

Each database is dumped by pg_dump in its custom format (pg_restore can restore it in parallel and
table by table) from a snapshot exported by a transaction of ours that stays open until every dump is
written. The snapshots of all databases are exported one right after the other, so every dump shows its
service as it was within milliseconds of the others, however long each dump takes. They cannot be one
atomic snapshot (each database has its own transactions): devtools.restore deals with the events that
were between two services at that moment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from devtools import broker_definitions
from devtools.console import PlatformError, display, step
from devtools.instance import Platform, redact_url, replace_url_path
from devtools.paths import ROOT

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
BROKER_FILE = "broker-definitions.json"
BACKUPS_DIR = ROOT / "var" / "backups"
TIMESTAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class StoredFile:
    """A file of the backup (a plain name inside its directory), its size and its sha256."""

    name: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class DatabaseBackup:
    service: str
    database: str  # the name it had in the instance backed up
    file: StoredFile
    snapshot_at: str  # when its snapshot was taken, by the database's clock (ISO 8601)
    migrations: dict[str, list[str]]  # app label -> migrations applied, in the order they were


@dataclass(frozen=True)
class BrokerBackup:
    vhost: str  # the vhost it had in the instance backed up
    rabbitmq_version: str
    file: StoredFile


@dataclass(frozen=True)
class Manifest:
    instance: str
    created_at: str
    git_commit: str | None
    git_dirty: bool  # tracked files differed from the commit
    postgres_version: str
    pg_dump_version: str
    databases: tuple[DatabaseBackup, ...]
    broker: BrokerBackup
    format: int = MANIFEST_FORMAT

    @property
    def files(self) -> list[StoredFile]:
        return [*(database.file for database in self.databases), self.broker.file]

    @property
    def earliest_snapshot(self) -> datetime:
        return min(datetime.fromisoformat(database.snapshot_at) for database in self.databases)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        """Read a manifest; a missing or ill-typed field raises KeyError, TypeError or ValueError."""
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this version reads {MANIFEST_FORMAT}")
        databases = tuple(
            DatabaseBackup(**{**entry, "file": StoredFile(**entry["file"])}) for entry in data["databases"]
        )
        broker = BrokerBackup(**{**data["broker"], "file": StoredFile(**data["broker"]["file"])})
        fields = {key: data[key] for key in ("instance", "created_at", "git_commit", "git_dirty")}
        versions = {key: data[key] for key in ("postgres_version", "pg_dump_version")}
        return cls(**fields, **versions, databases=databases, broker=broker)


@dataclass(frozen=True)
class Snapshot:
    """A database's exported snapshot, held open by our transaction, and what it showed of migrations."""

    id: str
    taken_at: datetime
    migrations: dict[str, list[str]]


# --- taking a backup -------------------------------------------------------------------------------------


def take_backup(platform: Platform, output: Path | None = None) -> tuple[Path, Manifest]:
    """Write a backup of the instance into `output` (default var/backups/<instance>/<UTC time>/).

    It is written into a hidden sibling folder and renamed at the end, so a folder with a manifest is
    always a whole backup; a failed one leaves nothing behind.
    """
    target = output or BACKUPS_DIR / platform.instance.name / datetime.now(UTC).strftime(TIMESTAMP)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PlatformError(f"{display(target)} already exists and is not empty: choose another --output")
    tools = DumpTools.find(platform)
    check_provisioned(platform)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted backup of the same name left
    partial.mkdir(parents=True, mode=0o700)  # the dumps hold password hashes
    try:
        manifest = write_backup(platform, tools, partial)
        partial.replace(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target, manifest


@dataclass(frozen=True)
class DumpTools:
    pg_dump: str
    rabbitmqctl: str
    server_version: str
    pg_dump_version: str

    @classmethod
    def find(cls, platform: Platform) -> DumpTools:
        """The tools a backup runs, once they are known to be there and able to dump this server."""
        pg_dump = require_tool("pg_dump")
        rabbitmqctl = broker_definitions.rabbitmqctl_path()
        server_version, dump_version = postgres_server_version(platform), tool_version(pg_dump)
        server_major = major_version(server_version)
        if major_version(dump_version) < server_major:
            raise PlatformError(
                f"{dump_version} cannot dump a PostgreSQL {server_version} server: install the client "
                f"tools of version {server_major} or later (Debian: postgresql-client-{server_major})"
            )
        return cls(pg_dump, rabbitmqctl, server_version, dump_version)


def write_backup(platform: Platform, tools: DumpTools, folder: Path) -> Manifest:
    """The broker's definitions, every database's dump, then the manifest that lists them."""
    services, vhost = platform.topology.service_names, platform.instance.broker_vhost
    step(f"Exporting the broker's definitions of vhost {vhost!r}")
    definitions = broker_definitions.export_instance(tools.rabbitmqctl, vhost, services)
    (folder / BROKER_FILE).write_text(json.dumps(definitions, indent=2, sort_keys=True) + "\n")
    with held_snapshots(platform, services) as snapshots:
        step(f"Dumping {len(services)} databases (pg_dump, custom format) from snapshots taken at once")
        databases = dump_databases(tools.pg_dump, platform, snapshots, folder)
    commit, dirty = git_state()
    manifest = Manifest(
        instance=platform.instance.name,
        created_at=datetime.now(UTC).isoformat(),
        git_commit=commit,
        git_dirty=dirty,
        postgres_version=tools.server_version,
        pg_dump_version=tools.pg_dump_version,
        databases=databases,
        broker=BrokerBackup(vhost, definitions["rabbitmq_version"], stored_file(folder, BROKER_FILE)),
    )
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PlatformError(
            f"{name} is not installed here: install the PostgreSQL client tools of the server's version "
            "(Debian: apt-get install postgresql-client)"
        )
    return found


def tool_version(path: str) -> str:
    """`pg_dump --version` -> "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"."""
    return subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def major_version(version: str) -> int:
    """The major version in "15.20 (Debian ...)" or "pg_dump (PostgreSQL) 15.20"; 0 when there is none."""
    found = re.search(r"(?:^|\s)(\d+)(?:\.\d+)?", version)
    return int(found.group(1)) if found else 0


def admin_connect(platform: Platform, database: str, **options):
    """A connection to one database as the Postgres admin (PG_ADMIN_URL, with the database swapped in)."""
    import psycopg  # importable only inside the virtualenv

    url = database_url(platform, database)
    try:
        return psycopg.connect(url, connect_timeout=5, **options)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlatformError(f"connecting to {redact_url(url)} failed: {first}") from None


def database_url(platform: Platform, database: str) -> str:
    return replace_url_path(platform.endpoints.pg_admin_url, "/" + quote(database, safe=""))


def existing_databases(platform: Platform, names: list[str]) -> set[str]:
    with admin_connect(platform, "postgres", autocommit=True) as connection:
        rows = connection.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])
        return {name for (name,) in rows}


def check_provisioned(platform: Platform) -> None:
    wanted = [platform.instance.database(service) for service in platform.topology.service_names]
    missing = [name for name in wanted if name not in existing_databases(platform, wanted)]
    if missing:
        raise PlatformError(
            f"instance {platform.instance.name!r} has no database {', '.join(missing)}: it was never "
            f"provisioned (PLATFORM_INSTANCE={platform.instance.name} python3 manage_all.py up)"
        )


def postgres_server_version(platform: Platform) -> str:
    with admin_connect(platform, "postgres", autocommit=True) as connection:
        return connection.info.parameter_status("server_version") or ""


@contextmanager
def held_snapshots(platform: Platform, services: tuple[str, ...]) -> Iterator[dict[str, Snapshot]]:
    """Export one snapshot per service database, all at one moment, held until the block ends.

    The connections are opened first, so that the exports follow each other within milliseconds.
    """
    with ExitStack() as stack:
        connections = {
            service: stack.enter_context(admin_connect(platform, platform.instance.database(service)))
            for service in services
        }
        yield {service: export_snapshot(connection) for service, connection in connections.items()}


def export_snapshot(connection) -> Snapshot:
    from psycopg import IsolationLevel

    connection.isolation_level = IsolationLevel.REPEATABLE_READ  # one snapshot for the whole transaction
    connection.read_only = True
    snapshot_id, taken_at = connection.execute("SELECT pg_export_snapshot(), clock_timestamp()").fetchone()
    return Snapshot(snapshot_id, taken_at, applied_migrations(connection))


def applied_migrations(connection) -> dict[str, list[str]]:
    """django_migrations as the snapshot shows it: app label -> migration names, in the order applied."""
    if connection.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is None:
        return {}
    applied: dict[str, list[str]] = {}
    for app, name in connection.execute("SELECT app, name FROM django_migrations ORDER BY applied, id"):
        applied.setdefault(app, []).append(name)
    return applied


def dump_databases(
    pg_dump: str, platform: Platform, snapshots: dict[str, Snapshot], folder: Path
) -> tuple[DatabaseBackup, ...]:
    """pg_dump of every service database from its held snapshot, side by side; each one's entry."""

    def dump(service: str) -> DatabaseBackup:
        database = platform.instance.database(service)
        name = f"{service}.dump"
        command = [
            pg_dump, "--format=custom", f"--snapshot={snapshots[service].id}", "--no-password",
            f"--file={folder / name}", f"--dbname={database_url(platform, database)}",
        ]  # fmt: skip
        run_postgres_tool(command, f"pg_dump of {database}")
        return DatabaseBackup(
            service=service,
            database=database,
            file=stored_file(folder, name),
            snapshot_at=snapshots[service].taken_at.isoformat(),
            migrations=snapshots[service].migrations,
        )

    with ThreadPoolExecutor(max_workers=len(snapshots)) as pool:
        return tuple(pool.map(dump, snapshots))


def run_postgres_tool(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise PlatformError(f"{what} failed (exit {result.returncode}): {lines[-1]}")


def stored_file(folder: Path, name: str) -> StoredFile:
    path = folder / name
    return StoredFile(name=name, bytes=path.stat().st_size, sha256=sha256_of(path))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def git_state() -> tuple[str | None, bool]:
    """The checkout's commit and whether tracked files differ from it (None when not a git checkout)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        return None, False
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    )
    return head.stdout.strip(), bool(status.stdout.strip())


# --- reading one back ------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise PlatformError(f"{display(folder)} is not a backup: it has no {MANIFEST_NAME}")
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as problem:
        raise PlatformError(f"{display(path)} is not a manifest this version can read: {problem}") from None


def verification_problems(folder: Path, manifest: Manifest) -> list[str]:
    """Every file the manifest lists, present in the folder with its size and checksum; what is not."""
    problems = []
    for stored in manifest.files:
        if Path(stored.name).name != stored.name or stored.name in ("", ".", ".."):
            problems.append(f"{stored.name!r} is not a file name inside the backup")
            continue
        path = folder / stored.name
        if not path.is_file():
            problems.append(f"{stored.name} is missing")
        elif path.stat().st_size != stored.bytes:
            problems.append(
                f"{stored.name} has {path.stat().st_size} bytes, the manifest says {stored.bytes}"
            )
        elif sha256_of(path) != stored.sha256:
            problems.append(f"{stored.name} does not match its sha256 in the manifest")
    return problems


def verified_manifest(folder: Path) -> Manifest:
    """The backup's manifest, once every file it lists is there and unchanged; else a PlatformError."""
    manifest = read_manifest(folder)
    problems = verification_problems(folder, manifest)
    if problems:
        raise PlatformError(
            f"backup {display(folder)} failed verification, nothing was restored: " + "; ".join(problems)
        )
    return manifest

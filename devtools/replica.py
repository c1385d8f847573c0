"""Each instance's streaming read replica: a hot standby of the local Postgres that `up` copies with
pg_basebackup into var/<instance>/replica/ and runs under the instance's supervisord, on the instance's
replica port (topology.toml `[processes] replica_port`, shifted like every port). The services read it
through their `replica` database alias (DATABASE_REPLICA_URL) for the reads that tolerate lag
(shared.replica, docs/data.md "Read replica").

Choices (docs/data.md says why at more length):
- One replica per instance, not one per machine. A standby is a physical copy of the whole cluster (every
  instance's databases: tens of MB, copied in about a second), so each instance's own follows that
  instance's `up` and `down` and ports like its other processes, with nothing shared to count.
- No replication slot. A slot keeps WAL on the primary for as long as its standby is away, and a standby
  whose instance is deleted without `down` would hold WAL forever on the Postgres every instance shares.
  Without one, a standby stopped for long enough that the primary recycled the WAL it needs can no longer
  catch up: its reads fall back to the primary (and its lag alert fires), `status` says it is not
  streaming, and the next `up` replaces it by a fresh copy, as it does whenever the standby is not
  streaming. `down` deletes the copy.
- Replication access: the role `replicator` (REPLICATION LOGIN, password REPLICATOR_DB_PASSWORD, by
  default `replicator-local` like the services' roles) and one pg_hba.conf line admitting it from
  127.0.0.1, which `up` adds when replication is refused (then `pg_reload_conf()`), saying so. When it
  cannot (not root, file not writable, Postgres elsewhere), `up` goes on without a replica and `status`
  says why; so it does with `up --no-replica` or PLATFORM_REPLICA=off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path

from devtools import instance as instances
from devtools.console import PlatformError, display, step, wait_for
from devtools.environment import db_password
from devtools.instance import Instance, Platform, Replica
from devtools.supervisor import Program, Supervisor

PROGRAM = "postgres-replica"
ROLE = "replicator"
SWITCH = "PLATFORM_REPLICA"  # "off": this instance runs without a replica (test instances that need none)
SYSTEM_USER = "postgres"  # who runs the standby when manage_all.py runs as root (Postgres refuses root)
HBA_LINE = f"host replication {ROLE} 127.0.0.1/32 scram-sha-256"
HBA_COMMENT = "# The order platform's local read replicas (manage_all.py up; docs/data.md, Read replica):"
# A hot standby refuses to start with less of these than its primary has.
COPIED_SETTINGS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STREAMING_TIMEOUT = 60.0


def replica_dir(instance: Instance) -> Path:
    """`var/<instance>/replica`, unless the standby runs as another system user (root cannot run
    Postgres) who cannot reach that folder: a checkout under a private folder (/root, a 0700 temporary
    directory). The copy then lives in that user's home, named after the instance and its var folder."""
    local = instance.var_dir / "replica"
    try:
        user = system_user()
    except PlatformError:  # no such user: no replica either, and the reason is given where it is made
        return local
    if user is None or reachable_by(user, instance.var_dir):
        return local
    digest = hashlib.sha256(str(instance.var_dir.resolve()).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam(user).pw_dir) / "order-platform-replicas" / f"{instance.name}-{digest}"


def reachable_by(user: str, folder: Path) -> bool:
    """Whether `user` can walk to `folder` (search permission on it and every parent)."""
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["test", "-x", str(folder)], user=user, check=False).returncode == 0


def data_dir(instance: Instance) -> Path:
    return replica_dir(instance) / "data"


# --- `up` ---------------------------------------------------------------------------------------------


def prepare(platform: Platform, *, turned_off: bool = False) -> Platform:
    """Make the instance's standby ready to start (kept when it is streaming, a fresh copy otherwise) and
    record it; without one, record why. Returns the platform with its replica, or with none."""
    reason = switched_off(platform, turned_off)
    replica = None
    if reason is None:
        step(f"Preparing the read replica (port {platform.instance.port(platform.topology.replica_port)})")
        try:
            replica = make_ready(platform)
        except PlatformError as problem:
            reason = str(problem)
        except (OSError, subprocess.SubprocessError) as problem:  # a folder it cannot make, a copy hung
            reason = f"{type(problem).__name__}: {problem}"
    if replica is None:
        stop(platform)
        shutil.rmtree(replica_dir(platform.instance), ignore_errors=True)
        print(f"    no read replica: {reason}; every service reads the primary alone")
    instances.record_replica(platform.instance, replica, reason or "")
    return dataclasses.replace(platform, replica=replica)


def switched_off(platform: Platform, turned_off: bool) -> str | None:
    """Why this instance must run without a replica, or None when it should have one."""
    if platform.topology.replica_port is None:
        return "topology.toml has no [processes] replica_port"
    if turned_off:
        return "turned off (up --no-replica)"
    value = os.environ.get(SWITCH, "on")
    if value.strip().lower() in ("off", "0", "false", "no"):
        return f"turned off ({SWITCH}={value})"
    return None


def make_ready(platform: Platform) -> Replica:
    """The standby to run, copied afresh unless the one running already streams. PlatformError: why not."""
    import psycopg  # importable only inside the virtualenv

    replica = Replica(
        port=platform.instance.port(platform.topology.replica_port),
        postgres=str(server_binaries(platform) / "postgres"),
        user=system_user(),
    )
    try:
        with psycopg.connect(platform.endpoints.pg_admin_url, autocommit=True, connect_timeout=5) as admin:
            ensure_replication_access(platform, admin)
            if standby_state(platform, replica.port) == "streaming":
                print("    the running standby is streaming: kept")
                return replica
            stop(platform)
            take_copy(platform, admin, replica)
    except psycopg.Error as exc:
        raise PlatformError(f"Postgres refused a step: {first_line(exc)}") from None
    return replica


def server_binaries(platform: Platform) -> Path:
    """The folder holding `postgres` and `pg_basebackup` of the primary's major version."""
    import psycopg

    with psycopg.connect(platform.endpoints.pg_admin_url, connect_timeout=5) as connection:
        major = int(connection.execute("SHOW server_version_num").fetchone()[0]) // 10000
    pg_config = shutil.which("pg_config")
    configured = (
        subprocess.run([pg_config, "--bindir"], capture_output=True, text=True) if pg_config else None
    )
    which = shutil.which("postgres")
    candidates = [
        os.environ.get("PG_BINDIR"),
        f"/usr/lib/postgresql/{major}/bin",  # Debian, Ubuntu
        f"/usr/pgsql-{major}/bin",  # the PGDG packages for RHEL
        configured.stdout.strip() if configured and configured.returncode == 0 else None,
        str(Path(which).resolve().parent) if which else None,
    ]
    for folder in filter(None, candidates):
        binary = Path(folder) / "postgres"
        if binary.exists() and (Path(folder) / "pg_basebackup").exists() and major_version(binary) == major:
            return Path(folder)
    raise PlatformError(
        f"no Postgres {major} server binaries here (postgres, pg_basebackup): install the server package "
        "of the primary's version, or set PG_BINDIR to their folder"
    )


def major_version(binary: Path) -> int | None:
    answer = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\)\s+(\d+)", answer.stdout)  # "postgres (PostgreSQL) 15.20 (Debian ...)"
    return int(found[1]) if found else None


def system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PlatformError(
            f"running as root, and there is no {SYSTEM_USER!r} system user to run the standby as "
            "(Postgres refuses to run as root)"
        ) from None
    return SYSTEM_USER


def ensure_replication_access(platform: Platform, admin) -> None:
    """The replication role, and a pg_hba.conf line admitting it from 127.0.0.1 (added when missing)."""
    from psycopg import sql

    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
    admin.execute(
        sql.SQL("{} ROLE {} WITH REPLICATION LOGIN PASSWORD {}").format(
            sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(ROLE), sql.Literal(db_password(ROLE))
        )
    )
    refusal = replication_refusal(platform)
    if refusal is None:
        return
    hba_file = admin.execute("SHOW hba_file").fetchone()[0]
    if platform.endpoints.postgres_host not in LOCAL_HOSTS or not Path(hba_file).exists():
        raise PlatformError(
            f"Postgres refuses replication ({refusal}) and its pg_hba.conf is not on this machine: add "
            f"`{HBA_LINE}` there (for this machine's address) and reload it"
        )
    append_hba_line(Path(hba_file), refusal)
    admin.execute("SELECT pg_reload_conf()")
    if not wait_for(lambda: replication_refusal(platform) is None, 10):
        raise PlatformError(
            f"Postgres still refuses replication after `{HBA_LINE}` in {hba_file} and a reload: "
            f"{replication_refusal(platform)} (an earlier line of the file may reject it)"
        )


def append_hba_line(hba_file: Path, refusal: str) -> None:
    """The line at the end of the file, unless it is there already (then only a reload was missing)."""
    try:
        if HBA_LINE in hba_file.read_text().splitlines():
            return
        with hba_file.open("a") as stream:
            stream.write(f"\n{HBA_COMMENT}\n{HBA_LINE}\n")
    except OSError as exc:
        raise PlatformError(
            f"Postgres refuses replication ({refusal}) and {hba_file} cannot be written here "
            f"({exc.strerror}): add `{HBA_LINE}` to it and run SELECT pg_reload_conf(), or run up as root"
        ) from None
    print(f"    added `{HBA_LINE}` to {hba_file}, then reloaded Postgres")


def replication_refusal(platform: Platform) -> str | None:
    """Why a replication connection as the role is refused, or None when it is accepted."""
    import psycopg

    endpoints = platform.endpoints
    try:
        psycopg.connect(
            host=endpoints.postgres_host,
            port=endpoints.postgres_port,
            user=ROLE,
            password=db_password(ROLE),
            dbname="replication",
            replication="true",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        return first_line(exc)
    return None


def take_copy(platform: Platform, admin, replica: Replica) -> None:
    """pg_basebackup of the whole cluster into a fresh data folder, then the standby's own configuration."""
    folder = data_dir(platform.instance)
    shutil.rmtree(replica_dir(platform.instance), ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    owned_by(folder, replica.user)
    endpoints = platform.endpoints
    command = [
        str(Path(replica.postgres).with_name("pg_basebackup")),
        "--host", endpoints.postgres_host, "--port", str(endpoints.postgres_port), "--username", ROLE,
        "--pgdata", str(folder), "--wal-method=stream", "--checkpoint=fast", "--write-recovery-conf",
        "--no-password",
    ]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": db_password(ROLE), "LC_ALL": "C"}
    copied = subprocess.run(
        command, cwd=folder, env=env, user=replica.user, capture_output=True, text=True, timeout=600
    )
    if copied.returncode != 0:
        last = (copied.stderr.strip().splitlines() or ["no output"])[-1]
        if replica.user and "Permission denied" in last:
            last += f" (the {replica.user} user must be able to reach {display(folder)} and its parents)"
        raise PlatformError(f"pg_basebackup failed (exit {copied.returncode}): {last}")
    write_configuration(platform, admin, folder, replica)


def write_configuration(platform: Platform, admin, folder: Path, replica: Replica) -> None:
    """The standby's postgresql.conf and pg_hba.conf (a copy of the primary's: it admits whom the primary
    admits); the port, address and socket are on its command line, above anything the copy brought."""
    copied = {name: admin.execute(f"SHOW {name}").fetchone()[0] for name in COPIED_SETTINGS}
    lines = [
        f"# Written by manage_all.py up (devtools.replica) for instance {platform.instance.name!r}:",
        f"# a hot standby of {platform.endpoints.postgres_host}:{platform.endpoints.postgres_port}.",
        f"cluster_name = 'platform-replica-{platform.instance.name}'",
        "hot_standby = on",
        "shared_buffers = '32MB'",
        "logging_collector = off",
        *(f"{name} = {value}" for name, value in copied.items()),
    ]
    import psycopg

    try:
        hba = admin.execute("SELECT pg_read_file(current_setting('hba_file'))").fetchone()[0]
    except psycopg.Error:  # not allowed to read it: admit password logins from loopback
        hba = "host all all 127.0.0.1/32 scram-sha-256\n"
    for name, text in (
        ("postgresql.conf", "\n".join(lines) + "\n"),
        ("pg_hba.conf", hba),
        ("pg_ident.conf", ""),
    ):
        (folder / name).write_text(text)
        (folder / name).chmod(0o600)
        owned_by(folder / name, replica.user)


def owned_by(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def replica_program(platform: Platform) -> Program:
    """The standby under supervisord: TCP on 127.0.0.1 only (no socket beside the primary's); stopped with
    SIGINT, Postgres' fast shutdown (SIGTERM would wait for every client to leave)."""
    replica = platform.replica
    command = [
        replica.postgres, "-D", str(data_dir(platform.instance)), "-p", str(replica.port),
        "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
    ]  # fmt: skip
    return Program(
        PROGRAM, command, data_dir(platform.instance), {"LC_ALL": "C"}, user=replica.user, stop_signal="INT"
    )


def stop(platform: Platform) -> None:
    """Stop the instance's standby: its supervisord program, or a postmaster a dead supervisord left."""
    Supervisor(platform.instance).stop_program(PROGRAM)
    pid_file = data_dir(platform.instance) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return
    if str(data_dir(platform.instance)) not in command_line:  # a reused pid: not ours
        return
    os.kill(pid, signal.SIGINT)
    if not wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30):
        raise PlatformError(f"the standby (pid {pid}) did not stop within 30 s")


def wait_until_streaming(platform: Platform) -> None:
    if platform.replica is None:
        return
    if wait_for(lambda: standby_state(platform, platform.replica.port) == "streaming", STREAMING_TIMEOUT):
        return
    log = display(platform.instance.log_dir / f"{PROGRAM}.log")
    raise PlatformError(
        f"the read replica is not streaming after {STREAMING_TIMEOUT:.0f} s "
        f"({standby_state(platform, platform.replica.port)}): see {log}"
    )


# --- `down` and `status` ---------------------------------------------------------------------------------


def remove(instance: Instance) -> None:
    """`down`: the copy goes (the next `up` makes a fresh one), and so does the record."""
    shutil.rmtree(replica_dir(instance), ignore_errors=True)
    instances.forget_replica(instance)


def standby_state(platform: Platform, port: int) -> str:
    """ "streaming", or what the standby is instead: not answering, not a standby, not streaming."""
    import psycopg

    query = "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)"
    try:
        with psycopg.connect(
            platform.endpoints.pg_admin_url, host="127.0.0.1", port=port, connect_timeout=2
        ) as c:
            in_recovery, receiver = c.execute(query).fetchone()
    except psycopg.Error as exc:
        return f"not answering: {first_line(exc)}"
    if not in_recovery:
        return "not a standby (promoted?)"
    return "streaming" if receiver == "streaming" else f"not streaming (WAL receiver: {receiver or 'none'})"


def describe(platform: Platform) -> tuple[bool, str]:
    """`status`'s line: (healthy, text). Running without a replica by choice or for a reason is healthy."""
    if platform.replica is None:
        reason = instances.replica_record(platform.instance).get("reason") or "no `up` has started one"
        return True, f"off: {reason}"
    state = standby_state(platform, platform.replica.port)
    where = f"127.0.0.1:{platform.replica.port}"
    if state != "streaming":
        return False, f"{where}: {state}; log: {display(platform.instance.log_dir / f'{PROGRAM}.log')}"
    return True, f"{where}: streaming, {lag(platform)}"


def lag(platform: Platform) -> str:
    """How far the standby's replay is behind the primary, in bytes and in seconds."""
    import psycopg

    with psycopg.connect(platform.endpoints.pg_admin_url, connect_timeout=2) as primary:
        written = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    query = (
        "SELECT greatest(pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()), 0),"
        " extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
    )
    replica_port = platform.replica.port
    with psycopg.connect(platform.endpoints.pg_admin_url, host="127.0.0.1", port=replica_port) as standby:
        behind, since = standby.execute(query, (written,)).fetchone()
    if not behind:
        return "replay caught up with the primary"
    last = (
        f"last transaction replayed {float(since):.1f} s ago" if since is not None else "nothing replayed yet"
    )
    return f"replay {int(behind)} bytes behind the primary ({last})"


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""backup and restore (devtools.backup, devtools.restore) on small instances of their own: real Postgres
databases (one per service, a few tables each, no platform processes) and a real RabbitMQ vhost.

The saga's own backup and restore, with every process running, is tests/test_backup_restore.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import uuid
from datetime import timedelta

import kombu
import psycopg
import pytest
from psycopg import sql

from devtools import backup, instance, provision, restore, topology
from devtools.console import PlatformError
from devtools.provision import run_rabbitmqctl
from tests.conftest import ROOT
from tests.instances import drop_instance_data

SUBSCRIBER, PUBLISHER, EVENT_TYPE = "notifications", "orders", "order.confirmed"
TABLES = """
CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text,
                                applied timestamptz DEFAULT now());
CREATE TABLE messaging_outboxevent (id uuid PRIMARY KEY, event_type text,
                                    created_at timestamptz DEFAULT now(), published_at timestamptz);
CREATE TABLE messaging_inboxmessage (id serial PRIMARY KEY, consumer text, event_id uuid, event_type text);
CREATE TABLE things (id serial PRIMARY KEY, label text);
INSERT INTO django_migrations (app, name) VALUES ('messaging', '0001_initial'), ('messaging', '0002_more');
"""


def small_platform(name: str, tmp_path) -> instance.Platform:
    model = topology.load()
    env = {"PLATFORM_INSTANCE": name}
    endpoints = instance.load_endpoints(model, env)
    resolved = instance.resolve_instance(name, endpoints, env)
    return instance.Platform(model, endpoints, dataclasses.replace(resolved, var_dir=tmp_path / name))


def connect(platform: instance.Platform, service: str) -> psycopg.Connection:
    return backup.admin_connect(platform, platform.instance.database(service), autocommit=True)


def rows(platform: instance.Platform, service: str, query: str) -> list[tuple]:
    with connect(platform, service) as db:
        return db.execute(query).fetchall()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An instance with every service's database (as its own role) and a vhost where notifications'
    events queue is bound to order.confirmed; orders published two events, notifications recorded one.
    A test that changes it restores it from its own backup before it ends."""
    platform = small_platform(f"backup_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("var"))
    provision.provision_databases(platform, list(platform.topology.service_names))
    provision.ensure_broker_vhost(platform)
    for service in platform.topology.service_names:
        with connect(platform, service) as db:
            db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(service)))
            db.execute(TABLES)
            db.execute("INSERT INTO things (label) VALUES (%s)", [f"{service} row"])
    recorded, in_flight = str(uuid.uuid4()), str(uuid.uuid4())
    with connect(platform, PUBLISHER) as db:
        for event_id in (recorded, in_flight):
            db.execute(
                "INSERT INTO messaging_outboxevent (id, event_type, published_at) VALUES (%s, %s, now())",
                [event_id, EVENT_TYPE],
            )
    with connect(platform, SUBSCRIBER) as db:
        db.execute(
            "INSERT INTO messaging_inboxmessage (consumer, event_id, event_type) VALUES (%s, %s, %s)",
            ["notifications.handlers.order_confirmed", recorded, EVENT_TYPE],
        )
    with kombu.Connection(platform.instance.broker_url) as connection:
        exchange = kombu.Exchange("domain.events", type="topic", durable=True)
        queue = kombu.Queue(f"{SUBSCRIBER}.events", exchange, routing_key=EVENT_TYPE, durable=True)
        queue(connection.default_channel).declare()
    platform_events = {"recorded": recorded, "in_flight": in_flight}
    yield platform, platform_events
    drop_instance_data(platform)


@pytest.fixture
def fresh(tmp_path):
    """An instance that was never provisioned: no database, no vhost."""
    platform = small_platform(f"restored_{uuid.uuid4().hex[:8]}", tmp_path)
    yield platform
    drop_instance_data(platform)


@pytest.fixture
def taken(source, tmp_path):
    platform, events = source
    folder, manifest = backup.take_backup(platform, tmp_path / "backup")
    return platform, events, folder, manifest


def test_the_manifest_lists_each_database_with_its_size_checksum_and_migrations(taken):
    platform, _events, folder, manifest = taken

    on_disk = json.loads((folder / backup.MANIFEST_NAME).read_text())
    assert backup.Manifest.from_json(on_disk) == manifest
    assert manifest.instance == platform.instance.name
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert manifest.git_commit == head.stdout.strip()
    assert [database.service for database in manifest.databases] == list(platform.topology.service_names)
    for database in manifest.databases:
        dump = folder / database.file.name
        assert database.database == platform.instance.database(database.service)
        assert (dump.stat().st_size, backup.sha256_of(dump)) == (database.file.bytes, database.file.sha256)
        assert database.migrations == {"messaging": ["0001_initial", "0002_more"]}
    assert max(d.snapshot_at for d in manifest.databases) < manifest.created_at
    definitions = json.loads((folder / manifest.broker.file.name).read_text())
    assert manifest.broker.vhost == definitions["vhost"] == platform.instance.broker_vhost
    assert [binding["routing_key"] for binding in definitions["bindings"]] == [EVENT_TYPE]
    assert [exchange["name"] for exchange in definitions["exchanges"]] == ["domain.events"]
    assert not list(folder.parent.glob(".*partial")), "the work folder is renamed into place"


def test_a_tampered_backup_is_refused_before_anything_is_touched(taken, fresh):
    _source, _events, folder, manifest = taken
    dump = folder / manifest.databases[0].file.name
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    with pytest.raises(PlatformError, match=rf"nothing was restored: {dump.name} does not match its sha256"):
        restore.restore(fresh, folder, force=True)
    assert backup.existing_databases(fresh, [fresh.instance.database("orders")]) == set()


def test_a_manifest_pointing_outside_the_backup_is_refused(taken):
    _source, _events, folder, _manifest = taken
    manifest = json.loads((folder / backup.MANIFEST_NAME).read_text())
    manifest["databases"][0]["file"]["name"] = "../../etc/passwd"
    (folder / backup.MANIFEST_NAME).write_text(json.dumps(manifest))

    with pytest.raises(PlatformError, match="is not a file name inside the backup"):
        backup.verified_manifest(folder)


def test_restore_refuses_a_database_that_holds_data_unless_forced(taken):
    platform, _events, folder, _manifest = taken
    with connect(platform, "catalog") as db:
        db.execute("INSERT INTO things (label) VALUES ('written after the backup')")

    with pytest.raises(PlatformError, match=r"holds data: .*catalog_.* nothing was restored.*--force"):
        restore.restore(platform, folder, force=False)
    assert len(rows(platform, "catalog", "SELECT * FROM things")) == 2

    # No replay: the shared source keeps its events as they were for the other tests.
    report = restore.restore(platform, folder, force=True, replay_window=timedelta(0))
    assert rows(platform, "catalog", "SELECT label FROM things") == [("catalog row",)]
    assert f"{platform.instance.database('catalog')} (1 tables with rows)" in report.replaced


def test_a_fresh_instance_gets_the_data_owned_by_its_roles_and_in_flight_events_reopened(taken, fresh):
    source, events, folder, _manifest = taken

    report = restore.restore(fresh, folder, force=False)

    assert report.databases == {s: fresh.instance.database(s) for s in fresh.topology.service_names}
    owners = rows(fresh, "payments", "SELECT tableowner FROM pg_tables WHERE tablename = 'things'")
    assert owners == [("payments",)]
    assert rows(fresh, "payments", "SELECT label FROM things") == [("payments row",)]
    # The event notifications never recorded is handed back to the relay; the recorded one is not.
    unpublished = rows(
        fresh, PUBLISHER, "SELECT id::text FROM messaging_outboxevent WHERE published_at IS NULL"
    )
    assert unpublished == [(events["in_flight"],)]
    assert report.events_to_republish == {PUBLISHER: 1}
    assert report.broker["bindings"] == 1
    bindings = run_rabbitmqctl(
        "rabbitmqctl", "-q", "list_bindings", "-p", fresh.instance.broker_vhost,
        "source_name", "destination_name", "routing_key", "--formatter", "json",
    )  # fmt: skip
    routed = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in json.loads(bindings)}
    assert ("domain.events", f"{SUBSCRIBER}.events", EVENT_TYPE) in routed
    assert source.instance.broker_vhost != fresh.instance.broker_vhost


def test_the_commands_answer_in_one_line_for_an_instance_never_provisioned(tmp_path):
    command = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "manage_all.py"), "backup"]
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PLATFORM_INSTANCE": f"never_{uuid.uuid4().hex[:6]}"}
    answer = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert answer.returncode == 1, answer.stdout + answer.stderr
    assert "it was never provisioned" in answer.stderr and "Traceback" not in answer.stderr
    assert answer.stdout == ""

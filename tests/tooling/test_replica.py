"""devtools.replica as planned (nothing started): the standby's program and port, who is given its URL,
when an instance goes without one and how that is recorded for `status`. The running replica is
tests/test_replica.py's."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from devtools import environment, instance, programs, replica, supervisor, topology
from devtools.console import PlatformError
from tests.tooling import test_planning
from tests.tooling.test_topology import MINIMAL, load

platform = test_planning.platform  # the fixture: the repository's topology as an isolated instance
STANDBY = instance.Replica(port=12532, postgres="/usr/lib/postgresql/15/bin/postgres", user="postgres")


def with_replica(platform):
    return dataclasses.replace(platform, replica=STANDBY)


def test_the_replica_port_is_a_topology_port_shifted_with_the_instance(platform, tmp_path):
    assert platform.topology.replica_port == 5532
    assert platform.instance.port(platform.topology.replica_port) == 12532
    assert load(tmp_path).replica_port is None  # a topology without one runs none
    clash = MINIMAL.replace("flower_port = 5555", "flower_port = 5555\nreplica_port = 7102")
    with pytest.raises(topology.TopologyError, match="collides with the read replica"):
        load(tmp_path, clash)


def test_the_standby_runs_under_supervisord_as_postgres_and_stops_fast(platform):
    assert replica.PROGRAM not in [p.name for p in programs.all_programs(platform)]
    planned = with_replica(platform)
    standby = next(p for p in programs.all_programs(planned) if p.name == replica.PROGRAM)

    assert standby.command[:5] == [
        STANDBY.postgres,
        "-D",
        str(replica.data_dir(planned.instance)),
        "-p",
        "12532",
    ]
    assert "listen_addresses=127.0.0.1" in standby.command and "unix_socket_directories=" in standby.command
    conf = supervisor.render_program(standby, planned.instance.log_dir)
    assert "user=postgres\n" in conf and "stopsignal=INT\n" in conf  # SIGTERM would wait for every client
    assert "user=" not in supervisor.render_program(
        programs.flower_program(planned), planned.instance.log_dir
    )


def test_only_the_supervised_service_processes_are_given_the_replica(platform):
    planned = with_replica(platform)
    for service in planned.topology.services:
        for program in programs.service_programs(planned, service):
            url = program.environment["DATABASE_REPLICA_URL"]
            assert url == environment.database_url(planned, service.name).replace(
                f":{planned.endpoints.postgres_port}/", ":12532/"
            )
        # manage.py commands and the test suites read and write the primary alone
        assert "DATABASE_REPLICA_URL" not in environment.service_env(planned, service.name)
    assert all("DATABASE_REPLICA_URL" not in p.environment for s in platform.topology.services
               for p in programs.service_programs(platform, s))  # fmt: skip


def test_an_instance_goes_without_a_replica_when_told_and_says_so(platform, monkeypatch):
    monkeypatch.delenv(replica.SWITCH, raising=False)
    assert replica.switched_off(platform, turned_off=False) is None
    assert replica.switched_off(platform, turned_off=True) == "turned off (up --no-replica)"
    monkeypatch.setenv(replica.SWITCH, "off")
    assert replica.switched_off(platform, turned_off=False) == "turned off (PLATFORM_REPLICA=off)"
    without_port = dataclasses.replace(
        platform, topology=dataclasses.replace(platform.topology, replica_port=None)
    )
    monkeypatch.delenv(replica.SWITCH)
    assert "no [processes] replica_port" in replica.switched_off(without_port, turned_off=False)


def test_what_up_did_is_recorded_for_the_other_commands(platform):
    instance.record_replica(platform.instance, STANDBY)
    assert instance.recorded_replica(platform.instance) == STANDBY
    instance.record_replica(platform.instance, None, "turned off (up --no-replica)")
    assert instance.recorded_replica(platform.instance) is None
    assert replica.describe(platform) == (True, "off: turned off (up --no-replica)")  # healthy by choice
    replica.remove(platform.instance)
    assert replica.describe(platform) == (True, "off: no `up` has started one")


def test_a_hba_file_it_cannot_write_is_explained_with_the_line_to_add(tmp_path):
    with pytest.raises(PlatformError) as refused:
        replica.append_hba_line(tmp_path / "missing" / "pg_hba.conf", "no pg_hba.conf entry")
    assert replica.HBA_LINE in str(refused.value) and "pg_reload_conf" in str(refused.value)
    writable = tmp_path / "pg_hba.conf"
    writable.write_text("host all all 127.0.0.1/32 trust\n")
    replica.append_hba_line(writable, "no pg_hba.conf entry")
    assert writable.read_text().splitlines()[-1] == replica.HBA_LINE


@pytest.fixture
def open_folder():
    """A folder every user may walk to (pytest's own tmp_path is under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(os.geteuid() != 0, reason="the standby runs as another user only under root")
def test_a_checkout_postgres_cannot_reach_keeps_its_standby_in_that_users_home(platform, open_folder):
    """CI may check out under /root or a 0700 temporary folder: Postgres, run as `postgres`, could not
    open its data folder there, so the copy goes to that user's home instead."""
    reachable = dataclasses.replace(platform.instance, var_dir=open_folder / "var")
    private = open_folder / "private"
    private.mkdir(mode=0o700)
    hidden = dataclasses.replace(platform.instance, var_dir=private / "var")

    assert replica.replica_dir(reachable) == reachable.var_dir / "replica"
    moved = replica.replica_dir(hidden)
    home = Path(pwd.getpwnam(replica.SYSTEM_USER).pw_dir)
    assert moved.parent == home / "order-platform-replicas"
    assert moved.name.startswith(f"{hidden.name}-")
    assert replica.reachable_by(replica.SYSTEM_USER, moved.parent)

"""The gunicorn settings every web process shares, on a real gunicorn (shared.observability.gunicorn_conf)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from shared.observability.gunicorn_conf import KEEPALIVE_SECONDS
from shared.testing import wait_until
from tests.conftest import free_port

APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""
CONFIG = """
from shared.observability.gunicorn_conf import settings_for

globals().update(settings_for("probe", tracing=False))
"""


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited, only its parent has not reaped it


def port_free(port: int) -> bool:
    """Whether a new gunicorn could listen there (it sets SO_REUSEADDR: closed connections do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_workers_die_with_a_killed_master_so_a_new_one_can_bind_at_once(tmp_path):
    (tmp_path / "probe_app.py").write_text(APP)
    (tmp_path / "gunicorn.conf.py").write_text(CONFIG)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), str(tmp_path)])}
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "probe_app:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--worker-class", "gthread", "--config", str(tmp_path / "gunicorn.conf.py")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        session = requests.Session()
        session.trust_env = False
        wait_until(lambda: _answers(session, port), timeout=30, message="gunicorn answering")
        workers = wait_until(
            lambda: len(children(master.pid)) == 2 and children(master.pid), message="workers"
        )

        os.kill(master.pid, signal.SIGKILL)
        master.wait(timeout=10)

        wait_until(
            lambda: not any(alive(worker) for worker in workers), timeout=1, message="workers gone at once"
        )
        assert port_free(port)  # a new master can bind now, not when the orphans notice
    finally:
        master.kill()
        for worker in children(master.pid):
            os.kill(worker, signal.SIGKILL)


def test_the_keep_alive_outlasts_the_gateways():
    """The gateway closes an idle upstream connection first (tests/test_gateway_render.py checks its side)."""
    assert KEEPALIVE_SECONDS >= 60


def _answers(session: requests.Session, port: int) -> bool:
    try:
        return session.get(f"http://127.0.0.1:{port}/", timeout=2).text == "ok"
    except requests.RequestException:
        return False

